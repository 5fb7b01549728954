"""ONNX in and out for the LSTM: kioku LSTMs as ONNX ``LSTM`` nodes, and ONNX ``LSTM``
nodes (every attribute) run by kioku.

ONNX stacks the gates in order i, o, f, c (kioku, like PyTorch: i, f, g, o), keeps the
two biases as ``B = [Wb, Rb]`` and the peepholes as ``P = [p_i, p_o, p_f]`` (kioku:
``[p_i, p_f, p_o]``); the conversion reorders rows. ``Y`` is ``(T, D, B, H)`` and the
final states ``(D, B, H)`` (``layout=1``: batch first, ``(B, T, D, H)`` and ``(B, D, H)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from .. import functional
from ..functional.onnx_activations import (
    ACTIVATION_NAMES,
    DEFAULT_ACTIVATIONS,
    onnx_activation_attributes,
    parse_onnx_activations,
)
from ..nn import LSTM
from ..nn.lstm_variants import make_lstm, variants_of
from ..nn.recurrent import RecurrentStack
from .onnx_graph import OnnxGraphBuilder, check_recurrent_weights, require_onnx
from .onnx_node import RECURRENT_ATTRIBUTES, RECURRENT_INPUTS, OnnxRecurrentNode

KIOKU_TO_ONNX_GATES = (0, 3, 1, 2)  # ONNX block k is kioku block KIOKU_TO_ONNX_GATES[k]
ONNX_TO_KIOKU_GATES = (0, 2, 3, 1)
PEEPHOLE_ORDER = (0, 2, 1)  # [i, f, o] <-> [i, o, f], its own inverse
LSTM_INPUTS = RECURRENT_INPUTS + ("initial_c", "P")
LSTM_ATTRIBUTES = tuple(sorted(RECURRENT_ATTRIBUTES + ("input_forget",)))


def reorder_blocks(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Rows of ``array (k*H, ...)`` taken in ``len(order)`` blocks, reordered."""
    blocks = np.split(np.asarray(array), len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


# -- kioku -> ONNX ---------------------------------------------------------------------
def add_lstm_stack(
    graph: OnnxGraphBuilder,
    lstm: LSTM,
    x: str,
    sequence_lens: str | None = None,
    initial_state: tuple[str, str] | None = None,
    prefix: str = "lstm",
) -> tuple[str, str, str]:
    """Add ``lstm`` (time-major input ``x (T, B, I)``) to ``graph``: one ONNX LSTM node per
    layer (``bidirectional`` for both directions) and the merge of the directions.
    Returns the names of ``y (T, B, D*H or H)``, ``h_n (L*D, B, H)``, ``c_n (L*D, B, H)``."""
    _check_exportable(lstm)
    D, H = lstm.num_directions, lstm.hidden_size
    p = lstm.params
    h_names, c_names = [], []

    def reorder(array: np.ndarray) -> np.ndarray:
        return reorder_blocks(array, KIOKU_TO_ONNX_GATES)

    for layer in range(lstm.num_layers):
        sfx = [lstm.suffix(layer, d) for d in range(D)]
        name = f"{prefix}_l{layer}"
        states = (None, None) if initial_state is None else tuple(initial_state)
        inputs = graph.recurrent_inputs(lstm, layer, x, reorder, sequence_lens, states, name)
        variants = variants_of(lstm)
        if variants["peephole"]:
            P = np.stack([reorder_blocks(p[f"weight_peephole{s}"], PEEPHOLE_ORDER) for s in sfx])
            inputs.append(graph.constant(f"{name}_P", P))
        attributes = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if variants["clip"] is not None:
            attributes["clip"] = float(variants["clip"])
        if variants["input_forget"]:
            attributes["input_forget"] = 1
        if variants["activations"] is not None:
            acts = [a for triple in variants["activations"] for a in triple]
            names, alphas, betas = onnx_activation_attributes(acts)
            attributes["activations"] = names
            if alphas:
                attributes["activation_alpha"] = [float(a) for a in alphas]
            if betas:
                attributes["activation_beta"] = [float(b) for b in betas]
        while inputs and inputs[-1] == "":
            inputs.pop()
        y, y_h, y_c = f"{name}_Y", f"{name}_Y_h", f"{name}_Y_c"
        graph.node("LSTM", inputs, [y, y_h, y_c], name=name, **attributes)
        h_names.append(y_h)
        c_names.append(y_c)
        x = graph.merge_directions(y, D, lstm.merge_mode, f"{name}_merged")
    h_n = graph.stack_layers(h_names, f"{prefix}_h_n")
    return x, h_n, graph.stack_layers(c_names, f"{prefix}_c_n")


def _check_exportable(lstm: LSTM) -> None:
    variants = variants_of(lstm)
    refused = {
        "proj_size": lstm.proj_size,
        "layer_norm": variants["layer_norm"],
        "zoneout": any(variants["zoneout"]),
    }
    for name, value in refused.items():
        if value:
            raise ValueError(f"{name}: the ONNX LSTM operator has no {name}, found {value!r}")


def to_onnx(
    model: object,
    path: str | os.PathLike | None = None,
    sequence_lens: bool = True,
    initial_state: bool = False,
    opset: int = 17,
):
    """Export a kioku ``LSTM``, ``LanguageModel`` or ``SequenceTagger`` as an ONNX model
    that ONNX Runtime runs; written atomically to ``path`` when given, returned always.

    For an ``LSTM``: inputs ``input`` (``(T, B, I)``, ``(B, T, I)`` with ``batch_first``),
    ``sequence_lens (B,)`` int32 when ``sequence_lens``, ``h0 (L*D, B, H)`` and
    ``c0`` when ``initial_state``; outputs ``output``, ``h_n``, ``c_n`` shaped as the
    layer returns them. The models (``initial_state`` gives the language model ``h0``,
    ``c0`` inputs): see :func:`kioku.interop.onnx_models.model_graph`.
    """
    if isinstance(model, LSTM):
        graph = layer_graph(
            model, "kioku_lstm", ("h", "c"), add_lstm_stack, sequence_lens, initial_state
        )
    else:
        from .onnx_models import model_graph

        graph = model_graph(model, sequence_lens, initial_state)
    return export_graph(graph, opset, path)


def save_model(proto, path: str | os.PathLike) -> None:
    """Write an ONNX ``ModelProto`` to ``path`` atomically (temp file, then rename)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(proto.SerializeToString())
    os.replace(tmp, path)


def export_graph(graph: OnnxGraphBuilder, opset: int, path: str | os.PathLike | None):
    """The ``ModelProto`` of ``graph`` at ``opset``, checked by ONNX and written atomically
    to ``path`` when given: how every ``to_onnx*`` ends."""
    onnx = require_onnx()
    proto = graph.build(opset)
    onnx.checker.check_model(proto)
    if path is not None:
        save_model(proto, path)
    return proto


def layer_graph(
    layer: RecurrentStack,
    graph_name: str,
    state_names: tuple[str, ...],
    add_stack: Callable[..., tuple[str, ...]],
    sequence_lens: bool,
    initial_state: bool,
) -> OnnxGraphBuilder:
    """The graph of one recurrent layer exported alone: input ``input`` (``(T, B, I)``,
    ``(B, T, I)`` with ``batch_first``), ``sequence_lens (B,)`` int32 when
    ``sequence_lens``, one ``{s}0 (L*D, B, H)`` per name ``s`` of ``state_names`` when
    ``initial_state``; outputs ``output`` shaped as the layer returns it and one
    ``{s}_n (L*D, B, H)`` per state. ``add_stack(graph, layer, x, lens, state)`` adds the
    layer's nodes (:func:`add_lstm_stack`, the GRU's) and returns ``y`` and the finals."""
    D, L, H, I = layer.num_directions, layer.num_layers, layer.hidden_size, layer.input_size
    graph = OnnxGraphBuilder(graph_name, layer.dtype)
    x_shape = ["batch", "time", I] if layer.batch_first else ["time", "batch", I]
    x = graph.input("input", x_shape)
    if layer.batch_first:
        x = graph.transpose(x, (1, 0, 2), "input_time_major")
    lens = graph.input("sequence_lens", ["batch"], np.int32) if sequence_lens else None
    state = None
    if initial_state:
        state = tuple(graph.input(f"{s}0", [L * D, "batch", H]) for s in state_names)
    y, *finals = add_stack(graph, layer, x, lens, state)
    if layer.batch_first:
        y = graph.transpose(y, (1, 0, 2), "output_batch_first")
    width = H * D if layer.merge_mode == "concat" else H
    y_shape = ["batch", "time", width] if layer.batch_first else ["time", "batch", width]
    graph.output(y, "output", y_shape)
    for s, final in zip(state_names, finals):
        graph.output(final, f"{s}_n", [L * D, "batch", H])
    return graph


# -- ONNX -> kioku ---------------------------------------------------------------------
class OnnxLSTM(OnnxRecurrentNode):
    """An ONNX graph holding one ``LSTM`` node, run by kioku.

    ``outputs = runner.run(feeds)`` takes the graph inputs by name (as ONNX Runtime's
    ``InferenceSession.run``) and returns the graph outputs in order: ``Y (T, D, B, H)``,
    ``Y_h (D, B, H)``, ``Y_c (D, B, H)`` (batch first with ``layout=1``), those the
    graph names. Constant inputs (initializers) are bound at load.
    """

    op, loader = "LSTM", "from_onnx"
    input_names_of_op = LSTM_INPUTS
    output_names_of_op = ("Y", "Y_h", "Y_c")
    attributes = LSTM_ATTRIBUTES

    def parse_attributes(self, attrs: dict, activations: list[str]) -> None:
        self.input_forget = int(attrs.get("input_forget", 0))
        if self.input_forget not in (0, 1):
            self._refuse("input_forget", "0 or 1", self.input_forget)
        self.clip = attrs.get("clip")
        if self.clip is not None and not 0 < self.clip < np.inf:
            self._refuse("clip", "a positive number", self.clip)
        if activations and len(activations) != 3 * self.num_directions:
            self._refuse("activations", f"{3 * self.num_directions} names", activations)
        try:
            acts = parse_onnx_activations(
                activations, attrs.get("activation_alpha", []), attrs.get("activation_beta", [])
            )
        except ValueError:
            self._refuse("activations", f"names among {', '.join(ACTIVATION_NAMES)}", activations)
        if not acts:
            acts = list(DEFAULT_ACTIVATIONS) * self.num_directions
        self.activations = [tuple(acts[3 * d : 3 * d + 3]) for d in range(self.num_directions)]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the node on ``feeds`` (graph input name -> array); see the class docstring."""
        get, x = self.feeds_and_input(feeds)
        W, R, bias, peep = get("W"), get("R"), get("B"), get("P")
        check_recurrent_weights(self.name, W, R, 4, self.num_directions, self.hidden_size)
        lengths = get("sequence_lens")
        h0_all, c0_all = self.initial(get("initial_h")), self.initial(get("initial_c"))
        ys, hs, cs = [], [], []
        for d in range(self.num_directions):
            weights = _kioku_weights(W[d], R[d], None if bias is None else bias[d], x.dtype)
            kwargs = {"activations": self.activations[d]}
            if peep is not None:
                kwargs["weight_peephole"] = reorder_blocks(peep[d], PEEPHOLE_ORDER).astype(x.dtype)
            if self.clip is not None:
                kwargs["clip"] = float(self.clip)
            if self.input_forget:
                kwargs["input_forget"] = True
            h0 = None if h0_all is None else h0_all[d].astype(x.dtype)
            c0 = None if c0_all is None else c0_all[d].astype(x.dtype)
            reverse = self.direction == "reverse" or d == 1
            hooks = functional.VariantHooks(**kwargs)
            y, h_n, c_n, _ = functional.lstm_forward(
                x, *weights, h0, c0, lengths, reverse, None, hooks=hooks
            )
            ys.append(y)
            hs.append(h_n)
            cs.append(c_n)
        return self.outputs(ys, hs, cs)

    def to_lstm(self) -> LSTM:
        """A kioku ``LSTM`` (time-major, one layer) with this node's constant weights and
        variants; ``ValueError`` for ``direction='reverse'`` (kioku has no reverse-only
        layer) or weights fed at run time."""
        if self.direction == "reverse":
            self._refuse("direction", "forward or bidirectional for a kioku LSTM", "reverse")
        self.constant_weights(("W", "R", "B", "P"), "to_lstm")
        W, R = self.constants[self.inputs["W"]], self.constants[self.inputs["R"]]
        # the same check as run(): a hidden_size attribute that disagrees is refused
        check_recurrent_weights(self.name, W, R, 4, self.num_directions, self.hidden_size)
        bias = self.constants.get(self.inputs["B"]) if self.inputs["B"] else None
        peep = self.constants.get(self.inputs["P"]) if self.inputs["P"] else None
        H = R.shape[-1]
        acts = [a for t in self.activations for a in t]
        lstm = make_lstm(
            W.shape[-1], H, bias=bias is not None, bidirectional=self.num_directions == 2,
            dtype=W.dtype, peephole=peep is not None, input_forget=bool(self.input_forget),
            clip=None if self.clip is None else float(self.clip),
            activations=[tuple(a) for a in acts],
        )  # fmt: skip
        for d in range(self.num_directions):
            sfx = lstm.suffix(0, d)
            lstm.params[f"weight_ih{sfx}"][...] = reorder_blocks(W[d], ONNX_TO_KIOKU_GATES)
            lstm.params[f"weight_hh{sfx}"][...] = reorder_blocks(R[d], ONNX_TO_KIOKU_GATES)
            if bias is not None:
                wb, rb = np.split(bias[d], 2)
                lstm.params[f"bias_ih{sfx}"][...] = reorder_blocks(wb, ONNX_TO_KIOKU_GATES)
                lstm.params[f"bias_hh{sfx}"][...] = reorder_blocks(rb, ONNX_TO_KIOKU_GATES)
            if peep is not None:
                lstm.params[f"weight_peephole{sfx}"][...] = reorder_blocks(peep[d], PEEPHOLE_ORDER)
        return lstm.eval()


def _kioku_weights(W, R, bias, dtype):
    weight_ih = reorder_blocks(W, ONNX_TO_KIOKU_GATES).astype(dtype)
    weight_hh = reorder_blocks(R, ONNX_TO_KIOKU_GATES).astype(dtype)
    if bias is None:
        return weight_ih, weight_hh, None
    wb, rb = np.split(np.asarray(bias), 2)
    return weight_ih, weight_hh, reorder_blocks(wb + rb, ONNX_TO_KIOKU_GATES).astype(dtype)


def from_onnx(path_or_model: object) -> OnnxLSTM:
    """Load an ONNX model (a path or a ``ModelProto``) holding one ``LSTM`` node and return
    an :class:`OnnxLSTM` that runs it with kioku. Every attribute of the operator is
    supported (direction, activations with alpha and beta, clip, input_forget, layout);
    an unsupported op or attribute value raises ``ValueError`` naming the node and it."""
    return OnnxLSTM.load(path_or_model)
