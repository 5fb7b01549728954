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
from .onnx_graph import OnnxGraphBuilder, check_recurrent_weights
from .onnx_io import export_graph, layer_graph
from .onnx_node import RECURRENT_ATTRIBUTES, RECURRENT_INPUTS, OnnxRecurrentNode

GRU_INPUTS = RECURRENT_INPUTS
GRU_ATTRIBUTES = tuple(sorted(RECURRENT_ATTRIBUTES + ("linear_before_reset",)))


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
    h_names = []
    for layer in range(gru.num_layers):
        name = f"{prefix}_l{layer}"
        inputs = graph.recurrent_inputs(
            gru, layer, x, swap_gates, sequence_lens, (initial_h,), name
        )
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
    return x, graph.stack_layers(h_names, f"{prefix}_h_n")


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
    if not isinstance(gru, GRU):
        raise TypeError(f"gru: expected kioku.nn.GRU, found {type(gru).__name__}")
    graph = layer_graph(gru, "kioku_gru", ("h",), _add_gru_stack_of, sequence_lens, initial_state)
    return export_graph(graph, opset, path)


def _add_gru_stack_of(
    graph: OnnxGraphBuilder, gru: GRU, x: str, lens: str | None, state: tuple[str] | None
) -> tuple[str, str]:
    """:func:`add_gru_stack` called as :func:`~kioku.interop.onnx_io.layer_graph` calls a
    stack: the initial state as a tuple of one."""
    return add_gru_stack(graph, gru, x, lens, None if state is None else state[0])


# -- ONNX -> kioku ---------------------------------------------------------------------
class OnnxGRU(OnnxRecurrentNode):
    """An ONNX graph holding one ``GRU`` node, run by kioku.

    ``outputs = runner.run(feeds)`` takes the graph inputs by name (as ONNX Runtime's
    ``InferenceSession.run``) and returns the graph outputs in order: ``Y (T, D, B, H)``
    and ``Y_h (D, B, H)`` (batch first with ``layout=1``), those the graph names.
    Constant inputs (initializers) are bound at load.
    """

    op, loader = "GRU", "from_onnx_gru"
    input_names_of_op = GRU_INPUTS
    output_names_of_op = ("Y", "Y_h")
    attributes = GRU_ATTRIBUTES

    def parse_attributes(self, attrs: dict, activations: list[str]) -> None:
        self.linear_before_reset = int(attrs.get("linear_before_reset", 0))
        if self.linear_before_reset not in (0, 1):
            self._refuse("linear_before_reset", "0 or 1", self.linear_before_reset)
        if "clip" in attrs:
            self._refuse("clip", "no clip (kioku's GRU does not clip)", attrs["clip"])
        if activations and activations != ["Sigmoid", "Tanh"] * self.num_directions:
            self._refuse("activations", "Sigmoid, Tanh for each direction", activations)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the node on ``feeds`` (graph input name -> array); see the class docstring."""
        get, x = self.feeds_and_input(feeds)
        W, R, bias = get("W"), get("R"), get("B")
        check_recurrent_weights(self.name, W, R, 3, self.num_directions, self.hidden_size)
        lengths = get("sequence_lens")
        h0_all = self.initial(get("initial_h"))
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
        return self.outputs(ys, hs)

    def to_gru(self) -> GRU:
        """A kioku ``GRU`` (time-major, one layer, ``reset_after = linear_before_reset``)
        with this node's constant weights; ``ValueError`` for ``direction='reverse'``
        (kioku has no reverse-only layer) or weights fed at run time."""
        if self.direction == "reverse":
            self._refuse("direction", "forward or bidirectional for a kioku GRU", "reverse")
        self.constant_weights(("W", "R", "B"), "to_gru")
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
    return OnnxGRU.load(path_or_model)
