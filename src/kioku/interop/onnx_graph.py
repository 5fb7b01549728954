"""A small builder for ONNX graphs: named inputs, constants, nodes and outputs, with the
few compound pieces the exporters share (merging the two directions of an LSTM layer,
slicing a stacked state)."""

from __future__ import annotations

import os

import numpy as np

from .optional import require


def require_onnx():
    """The ``onnx`` module, or ``ImportError`` saying how to install it."""
    return require("onnx", "ONNX export and import", "onnx", "'kioku-lstm[onnx]'")


class OnnxGraphBuilder:
    """Collects nodes, initializers, inputs and outputs; :meth:`build` makes the model."""

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.onnx = require_onnx()
        self.name = name
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def _elem(self, dtype) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def input(self, name: str, shape: list, dtype=None) -> str:
        """Declare graph input ``name`` (``shape`` may hold symbolic names)."""
        elem = self._elem(self.dtype if dtype is None else dtype)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, source: str, name: str, shape: list, dtype=None) -> None:
        """Declare graph output ``name`` holding ``source`` (an Identity when they differ)."""
        if source != name:
            self.node("Identity", [source], [name], name=f"{name}_identity")
        elem = self._elem(self.dtype if dtype is None else dtype)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as initializer ``name``."""
        array = np.ascontiguousarray(array)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> None:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, name=name, **attrs))

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def transpose(self, x: str, perm: tuple[int, ...], name: str) -> str:
        self.node("Transpose", [x], [name], name=name, perm=list(perm))
        return name

    def concat(self, xs: list[str], axis: int, name: str) -> str:
        self.node("Concat", xs, [name], name=name, axis=axis)
        return name

    def stack_layers(self, names: list[str], name: str) -> str:
        """The final states of each layer, ``(D, B, H)`` each, as one ``(L*D, B, H)``."""
        return self.concat(names, 0, name) if len(names) > 1 else names[0]

    def recurrent_inputs(
        self,
        module,
        layer: int,
        x: str,
        reorder,
        sequence_lens: str | None,
        states: tuple[str | None, ...],
        name: str,
    ) -> list[str]:
        """The inputs ``X, W, R, B, sequence_lens, initial states`` of the ONNX recurrent
        node for ``layer`` of the kioku ``module`` (``""`` for each one left out):
        ``reorder(array)`` takes the gate blocks of a kioku weight or bias in ONNX's order,
        and each of ``states`` (``(L*D, B, H)`` or ``None``) is sliced to the layer's."""
        D, p = module.num_directions, module.params
        sfx = [module.suffix(layer, d) for d in range(D)]
        W = np.stack([reorder(p[f"weight_ih{s}"]) for s in sfx])
        R = np.stack([reorder(p[f"weight_hh{s}"]) for s in sfx])
        inputs = [x, self.constant(f"{name}_W", W), self.constant(f"{name}_R", R)]
        if module.bias:
            biases = [
                np.concatenate([reorder(p[f"bias_ih{s}"]), reorder(p[f"bias_hh{s}"])]) for s in sfx
            ]
            inputs.append(self.constant(f"{name}_B", np.stack(biases)))
        else:
            inputs.append("")
        inputs.append(sequence_lens or "")
        for state in states:
            if state is None:
                inputs.append("")
            else:
                inputs.append(self.slice0(state, layer * D, (layer + 1) * D, f"{name}_{state}"))
        return inputs

    def slice0(self, x: str, start: int, end: int, name: str) -> str:
        """``x[start:end]`` along axis 0."""
        starts = self.constant(f"{name}_starts", np.array([start], np.int64))
        ends = self.constant(f"{name}_ends", np.array([end], np.int64))
        axes = self.constant(f"{name}_axes", np.array([0], np.int64))
        self.node("Slice", [x, starts, ends, axes], [name], name=name)
        return name

    def merge_directions(self, y: str, directions: int, mode: str, name: str) -> str:
        """An ONNX LSTM's ``Y (T, D, B, H)`` as ``(T, B, D*H)`` (concat) or ``(T, B, H)``
        (sum, mean, mul; or ``D = 1``)."""
        if directions == 1 or mode != "concat":
            axis1 = self.constant(f"{name}_axis1", np.array([1], np.int64))
        if directions == 1:
            self.node("Squeeze", [y, axis1], [name], name=name)
            return name
        if mode == "concat":
            moved = self.transpose(y, (0, 2, 1, 3), f"{name}_tbdh")
            shape = self.constant(f"{name}_shape", np.array([0, 0, -1], np.int64))
            self.node("Reshape", [moved, shape], [name], name=name)
            return name
        if mode in ("sum", "mean"):
            total = name if mode == "sum" else f"{name}_sum"
            self.node("ReduceSum", [y, axis1], [total], name=total, keepdims=0)
            if mode == "mean":
                half = self.constant(f"{name}_half", np.array(0.5, self.dtype))
                self.node("Mul", [total, half], [name], name=name)
            return name
        forward, backward = f"{name}_fw", f"{name}_bw"
        self.node("Split", [y], [forward, backward], name=f"{name}_split", axis=1)
        product = f"{name}_product"
        self.node("Mul", [forward, backward], [product], name=product)
        self.node("Squeeze", [product, axis1], [name], name=name)
        return name

    def build(self, opset: int):
        """The ``onnx.ModelProto``."""
        helper = self.onnx.helper
        graph = helper.make_graph(
            self.nodes, self.name, self.inputs, self.outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kioku"
        )
        model.ir_version = min(model.ir_version, 8)
        return model


def load_onnx_file(path: str | os.PathLike):
    """``onnx.load`` of ``path``; a missing, truncated or corrupt file is a ``ValueError``
    naming the file (not the protobuf library's message alone)."""
    onnx = require_onnx()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected an ONNX model)")
    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf's DecodeError and friends
        message = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path}: not a readable ONNX model ({message})") from None
    if not model.graph.node:
        raise ValueError(f"{path}: not a readable ONNX model (its graph has no node)")
    return model


def check_recurrent_weights(
    name: str, W: np.ndarray, R: np.ndarray, gates: int, directions: int, hidden_size: object
) -> int:
    """The hidden size of an ONNX recurrent node's ``W (D, gates*H, I)`` and
    ``R (D, gates*H, H)``; ``ValueError`` naming node ``name`` when their shapes
    disagree with each other, with the directions, or with the ``hidden_size``
    attribute."""
    W, R = np.asarray(W), np.asarray(R)
    if R.ndim != 3 or R.shape[0] != directions or R.shape[1] != gates * R.shape[2]:
        raise ValueError(
            f"node {name!r}: input 'R': expected shape ({directions}, {gates}*H, H), "
            f"found {R.shape}"
        )
    H = R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (directions, gates * H):
        raise ValueError(
            f"node {name!r}: input 'W': expected shape ({directions}, {gates * H}, I), "
            f"found {W.shape}"
        )
    if hidden_size is not None and hidden_size != H:
        raise ValueError(
            f"node {name!r}: attribute 'hidden_size': expected {H} (R's last axis), "
            f"found {hidden_size!r}"
        )
    return H
