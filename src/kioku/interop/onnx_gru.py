"""ONNX in and out for the GRU: kioku GRUs as ONNX ``GRU`` nodes, and ONNX ``GRU`` nodes
run by kioku.

ONNX stacks the gates in order z, r, h (kioku, like PyTorch: r, z, n) and keeps the two
biases as ``B = [Wb, Rb] (D, 6H)``. ``linear_before_reset=1`` is PyTorch's GRU
(``r * (h R_h + Rb_h)``, kioku ``reset_after=True``); ``linear_before_reset=0``, ONNX's
default, is ``(r * h) R_h + Rb_h`` (kioku ``reset_after=False``). ``Y`` is
``(T, D, B, H)`` and ``Y_h (D, B, H)`` (``layout=1``: ``(B, T, D, H)`` and ``(B, D, H)``).
Supported attributes: ``direction``, ``hidden_size``, ``layout``,
``linear_before_reset`` and the default ``activations`` (Sigmoid, Tanh); ``clip`` and
other activations are refused naming the node and the attribute.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from .. import functional
from ..nn import GRU
from .keras_gru import swap_gates
from .onnx_graph import (
    OnnxGraphBuilder,
    check_recurrent_weights,
    load_onnx_file,
    require_onnx,
)
from .onnx_io import _constant_value, _to_array, save_model

GRU_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h")
GRU_ATTRIBUTES = (
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
    "linear_before_reset",
)


# -- kioku -> ONNX ---------------------------------------------------------------------
def add_gru_stack(
    graph: OnnxGraphBuilder,
    gru: GRU,
    x: str,
    sequence_lens: str | None = None,
    initial_h: str | None = None,
    prefix: str = "gru",
) -> tuple[str, str]:
    """Add ``gru`` (time-major input ``x (T, B, I)``) to ``graph``: one ONNX GRU node per
    layer (``bidirectional`` for both directions) and the merge of the directions.
    Returns the names of ``y (T, B, D*H or H)`` and ``h_n (L*D, B, H)``."""
    D, H = gru.num_directions, gru.hidden_size
    p = gru.params
    h_names = []
    for layer in range(gru.num_layers):
        sfx = [gru.suffix(layer, d) for d in range(D)]
        name = f"{prefix}_l{layer}"
        W = np.stack([swap_gates(p[f"weight_ih{s}"]) for s in sfx])
        R = np.stack([swap_gates(p[f"weight_hh{s}"]) for s in sfx])
        inputs = [x, graph.constant(f"{name}_W", W), graph.constant(f"{name}_R", R)]
        if gru.bias:
            B = np.stack(
                [
                    np.concatenate([swap_gates(p[f"bias_ih{s}"]), swap_gates(p[f"bias_hh{s}"])])
                    for s in sfx
                ]
            )
            inputs.append(graph.constant(f"{name}_B", B))
        else:
            inputs.append("")
        inputs.append(sequence_lens or "")
        if initial_h is not None:
            inputs.append(graph.slice0(initial_h, layer * D, (layer + 1) * D, f"{name}_h0"))
        while inputs and inputs[-1] == "":
            inputs.pop()
        y, y_h = f"{name}_Y", f"{name}_Y_h"
        graph.node(
            "GRU", inputs, [y, y_h], name=name, hidden_size=H,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=int(gru.reset_after),
        )  # fmt: skip
        h_names.append(y_h)
        x = graph.merge_directions(y, D, gru.merge_mode, f"{name}_merged")
    h_n = graph.concat(h_names, 0, f"{prefix}_h_n") if len(h_names) > 1 else h_names[0]
    return x, h_n


def to_onnx_gru(
    gru: GRU,
    path: str | os.PathLike | None = None,
    sequence_lens: bool = True,
    initial_state: bool = False,
    opset: int = 17,
):
    """Export a kioku ``GRU`` as an ONNX model that ONNX Runtime runs; written atomically
    to ``path`` when given, returned always. Inputs ``input`` (``(T, B, I)``, ``(B, T, I)``
    with ``batch_first``), ``sequence_lens (B,)`` int32 when ``sequence_lens``,
    ``h0 (L*D, B, H)`` when ``initial_state``; outputs ``output`` and ``h_n`` shaped as
    the layer returns them."""
    onnx = require_onnx()
    if not isinstance(gru, GRU):
        raise TypeError(f"gru: expected kioku.nn.GRU, found {type(gru).__name__}")
    D, L, H, I = gru.num_directions, gru.num_layers, gru.hidden_size, gru.input_size
    graph = OnnxGraphBuilder("kioku_gru", gru.dtype)
    x = graph.input("input", ["batch", "time", I] if gru.batch_first else ["time", "batch", I])
    if gru.batch_first:
        x = graph.transpose(x, (1, 0, 2), "input_time_major")
    lens = graph.input("sequence_lens", ["batch"], np.int32) if sequence_lens else None
    h0 = graph.input("h0", [L * D, "batch", H]) if initial_state else None
    y, h_n = add_gru_stack(graph, gru, x, lens, h0)
    if gru.batch_first:
        y = graph.transpose(y, (1, 0, 2), "output_batch_first")
    width = H * D if gru.merge_mode == "concat" else H
    graph.output(
        y, "output", ["batch", "time", width] if gru.batch_first else ["time", "batch", width]
    )
    graph.output(h_n, "h_n", [L * D, "batch", H])
    proto = graph.build(opset)
    onnx.checker.check_model(proto)
    if path is not None:
        save_model(proto, path)
    return proto


# -- ONNX -> kioku ---------------------------------------------------------------------
class OnnxGRU:
    """An ONNX graph holding one ``GRU`` node, run by kioku.

    ``outputs = runner.run(feeds)`` takes the graph inputs by name (as ONNX Runtime's
    ``InferenceSession.run``) and returns the graph outputs in order: ``Y (T, D, B, H)``
    and ``Y_h (D, B, H)`` (batch first with ``layout=1``), those the graph names.
    Constant inputs (initializers) are bound at load.
    """

    def __init__(self, model) -> None:
        graph = model.graph
        constants = {init.name: _to_array(init) for init in graph.initializer}
        nodes = list(graph.node)
        for node in nodes:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                constants[node.output[0]] = _constant_value(node)
        gru_nodes = [n for n in nodes if n.op_type != "Constant"]
        for node in gru_nodes:
            if node.op_type != "GRU" or node.domain not in ("", "ai.onnx"):
                raise ValueError(
                    f"node {node.name or node.output[0]!r}: unsupported op {node.op_type!r} "
                    f"(from_onnx_gru runs graphs of one GRU node)"
                )
        if len(gru_nodes) != 1:
            raise ValueError(f"model: expected one GRU node, found {len(gru_nodes)}")
        self.node = node = gru_nodes[0]
        self.name = node.name or node.output[0]
        self._parse_attributes(node)
        self.inputs = dict(zip(GRU_INPUTS, list(node.input) + [""] * 6))
        self.constants = {k: v for k, v in constants.items() if k in self.inputs.values()}
        self.input_names = [i.name for i in graph.input if i.name not in constants]
        self.output_names = [o.name for o in graph.output]
        self.node_outputs = dict(zip(("Y", "Y_h"), list(node.output) + ["", ""]))
        for name in self.output_names:
            if name not in self.node_outputs.values():
                raise ValueError(f"model: graph output {name!r} is not an output of {self.name!r}")

    def _refuse(self, attribute: str, expected: str, found: object) -> None:
        raise ValueError(
            f"node {self.name!r}: attribute {attribute!r}: expected {expected}, found {found!r}"
        )

    def _parse_attributes(self, node) -> None:
        onnx = require_onnx()
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for name in attrs:
            if name not in GRU_ATTRIBUTES:
                self._refuse(name, f"one of {', '.join(GRU_ATTRIBUTES)}", name)
        decode = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
        self.direction = decode(attrs.get("direction", "forward"))
        if self.direction not in ("forward", "reverse", "bidirectional"):
            self._refuse("direction", "forward, reverse or bidirectional", self.direction)
        self.num_directions = 2 if self.direction == "bidirectional" else 1
        self.layout = int(attrs.get("layout", 0))
        if self.layout not in (0, 1):
            self._refuse("layout", "0 or 1", self.layout)
        self.linear_before_reset = int(attrs.get("linear_before_reset", 0))
        if self.linear_before_reset not in (0, 1):
            self._refuse("linear_before_reset", "0 or 1", self.linear_before_reset)
        if "clip" in attrs:
            self._refuse("clip", "no clip (kioku's GRU does not clip)", attrs["clip"])
        names = [decode(n) for n in attrs.get("activations", [])]
        if names and names != ["Sigmoid", "Tanh"] * self.num_directions:
            self._refuse("activations", "Sigmoid, Tanh for each direction", names)
        self.hidden_size = attrs.get("hidden_size")

    def __call__(self, **feeds: np.ndarray) -> list[np.ndarray]:
        """``run`` with the feeds as keyword arguments."""
        return self.run(feeds)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the node on ``feeds`` (graph input name -> array); see the class docstring."""
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"feeds: missing graph input {missing[0]!r}")
        values = {**self.constants, **{k: np.asarray(v) for k, v in feeds.items()}}
        get = lambda key: values.get(self.inputs[key]) if self.inputs[key] else None  # noqa: E731
        x = get("X")
        if x is None or x.dtype not in (np.float32, np.float64):
            raise TypeError(f"X: expected a float32 or float64 array, found {type(x).__name__}")
        if self.layout == 1:
            x = x.transpose(1, 0, 2)
        x = np.ascontiguousarray(x)
        W, R, bias = get("W"), get("R"), get("B")
        check_recurrent_weights(self.name, W, R, 3, self.num_directions, self.hidden_size)
        lengths = get("sequence_lens")
        h0_all = get("initial_h")
        if self.layout == 1 and h0_all is not None:
            h0_all = h0_all.transpose(1, 0, 2)
        ys, hs = [], []
        for d in range(self.num_directions):
            b_ih = b_hh = None
            if bias is not None:
                b_ih, b_hh = (swap_gates(b).astype(x.dtype) for b in np.split(bias[d], 2))
            y, h_n, _ = functional.gru_forward(
                x,
                swap_gates(W[d]).astype(x.dtype),
                swap_gates(R[d]).astype(x.dtype),
                b_ih,
                b_hh,
                None if h0_all is None else h0_all[d].astype(x.dtype),
                lengths,
                self.direction == "reverse" or d == 1,
                bool(self.linear_before_reset),
            )
            ys.append(y)
            hs.append(h_n)
        Y, Y_h = np.stack(ys, axis=1), np.stack(hs)
        if self.layout == 1:
            Y, Y_h = Y.transpose(2, 0, 1, 3), Y_h.transpose(1, 0, 2)
        results = {self.node_outputs["Y"]: Y, self.node_outputs["Y_h"]: Y_h}
        return [results[name] for name in self.output_names]

    def to_gru(self) -> GRU:
        """A kioku ``GRU`` (time-major, one layer, ``reset_after = linear_before_reset``)
        with this node's constant weights; ``ValueError`` for ``direction='reverse'``
        (kioku has no reverse-only layer) or weights fed at run time."""
        if self.direction == "reverse":
            self._refuse("direction", "forward or bidirectional for a kioku GRU", "reverse")
        for key in ("W", "R", "B"):
            if self.inputs[key] and self.inputs[key] not in self.constants:
                raise ValueError(f"{key}: expected a constant (initializer) for to_gru")
        W, R = self.constants[self.inputs["W"]], self.constants[self.inputs["R"]]
        # the same check as run(): a hidden_size attribute that disagrees is refused
        check_recurrent_weights(self.name, W, R, 3, self.num_directions, self.hidden_size)
        bias = self.constants.get(self.inputs["B"]) if self.inputs["B"] else None
        gru = GRU(
            W.shape[-1], R.shape[-1], bias=bias is not None,
            bidirectional=self.num_directions == 2, dtype=W.dtype,
            reset_after=bool(self.linear_before_reset),
        )  # fmt: skip
        for d in range(self.num_directions):
            sfx = gru.suffix(0, d)
            gru.params[f"weight_ih{sfx}"][...] = swap_gates(W[d])
            gru.params[f"weight_hh{sfx}"][...] = swap_gates(R[d])
            if bias is not None:
                wb, rb = np.split(bias[d], 2)
                gru.params[f"bias_ih{sfx}"][...] = swap_gates(wb)
                gru.params[f"bias_hh{sfx}"][...] = swap_gates(rb)
        return gru.eval()


def from_onnx_gru(path_or_model: object) -> OnnxGRU:
    """Load an ONNX model (a path or a ``ModelProto``) holding one ``GRU`` node and return
    an :class:`OnnxGRU` that runs it with kioku; an unsupported op or attribute value
    raises ``ValueError`` naming the node and it."""
    onnx = require_onnx()
    if isinstance(path_or_model, (str, os.PathLike)):
        model = load_onnx_file(path_or_model)
        try:
            return OnnxGRU(model)
        except (ValueError, TypeError) as error:  # name the file the node came from
            raise type(error)(f"{os.fspath(path_or_model)}: {error}") from None
    elif isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    else:
        raise TypeError(
            "path_or_model: expected a path or onnx.ModelProto, found "
            f"{type(path_or_model).__name__}"
        )
    return OnnxGRU(model)
