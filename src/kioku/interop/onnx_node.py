"""What running one ONNX recurrent node (``LSTM``, ``GRU``) with kioku shares: reading
the graph (one node, its constant inputs), the attributes every recurrent op has
(``direction``, ``layout``), the feeds of a run and the layout of its outputs.

A subclass names its op, its inputs, outputs and attributes, parses its own attributes
in :meth:`OnnxRecurrentNode.parse_attributes` and runs the directions in ``run``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from .onnx_graph import load_onnx_file, require_onnx


def to_array(tensor, what: str = "initializer") -> np.ndarray:
    """An ONNX ``TensorProto`` as a NumPy array; ``ValueError`` naming the tensor (``what``
    and its name) when its data does not fill its declared shape (an initializer declared
    but empty, say)."""
    from onnx import numpy_helper

    try:
        return numpy_helper.to_array(tensor)
    except Exception as error:  # onnx raises ValueError, TypeError, its own errors
        dims = [int(d) for d in tensor.dims]
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"{what} {tensor.name or '(unnamed)'!r}: declared shape {dims} "
            f"({int(np.prod(dims))} values), but its data does not fill it ({detail})"
        ) from None


def constant_value(node) -> np.ndarray:
    """The value of a ``Constant`` node."""
    for attribute in node.attribute:
        if attribute.name == "value":
            return to_array(attribute.t, f"Constant {node.name or node.output[0]!r} value")
    raise ValueError(
        f"node {node.name or node.output[0]!r}: attribute of Constant: expected 'value', "
        f"found {[a.name for a in node.attribute]}"
    )


def _decode(value: object) -> object:
    return value.decode() if isinstance(value, bytes) else value


# What every ONNX recurrent op (RNN, GRU, LSTM) takes; each op adds its own.
RECURRENT_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h")
RECURRENT_ATTRIBUTES = (
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
)


class OnnxRecurrentNode:
    """An ONNX graph holding one recurrent node, run by kioku (see the subclasses)."""

    op: str = ""
    loader: str = ""  # the function that builds it, named in errors
    input_names_of_op: tuple[str, ...] = ()
    output_names_of_op: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    def __init__(self, model) -> None:
        graph = model.graph
        constants = {init.name: to_array(init) for init in graph.initializer}
        nodes = list(graph.node)
        for node in nodes:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                constants[node.output[0]] = constant_value(node)
        recurrent = [n for n in nodes if n.op_type != "Constant"]
        for node in recurrent:
            if node.op_type != self.op or node.domain not in ("", "ai.onnx"):
                raise ValueError(
                    f"node {node.name or node.output[0]!r}: unsupported op {node.op_type!r} "
                    f"({self.loader} runs graphs of one {self.op} node)"
                )
        if len(recurrent) != 1:
            raise ValueError(f"model: expected one {self.op} node, found {len(recurrent)}")
        self.node = node = recurrent[0]
        self.name = node.name or node.output[0]
        onnx = require_onnx()
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for name in attrs:
            if name not in self.attributes:
                self._refuse(name, f"one of {', '.join(self.attributes)}", name)
        self.direction = _decode(attrs.get("direction", "forward"))
        if self.direction not in ("forward", "reverse", "bidirectional"):
            self._refuse("direction", "forward, reverse or bidirectional", self.direction)
        self.num_directions = 2 if self.direction == "bidirectional" else 1
        self.layout = int(attrs.get("layout", 0))
        if self.layout not in (0, 1):
            self._refuse("layout", "0 or 1", self.layout)
        self.hidden_size = attrs.get("hidden_size")
        self.parse_attributes(attrs, [_decode(n) for n in attrs.get("activations", [])])
        padding = [""] * len(self.input_names_of_op)
        self.inputs = dict(zip(self.input_names_of_op, list(node.input) + padding))
        self.constants = {k: v for k, v in constants.items() if k in self.inputs.values()}
        self.input_names = [i.name for i in graph.input if i.name not in constants]
        self.output_names = [o.name for o in graph.output]
        padding = [""] * len(self.output_names_of_op)
        self.node_outputs = dict(zip(self.output_names_of_op, list(node.output) + padding))
        for name in self.output_names:
            if name not in self.node_outputs.values():
                raise ValueError(f"model: graph output {name!r} is not an output of {self.name!r}")

    def parse_attributes(self, attrs: dict, activations: list[str]) -> None:
        """Read the op's own attributes (``activations`` decoded to names)."""

    def _refuse(self, attribute: str, expected: str, found: object) -> None:
        raise ValueError(
            f"node {self.name!r}: attribute {attribute!r}: expected {expected}, found {found!r}"
        )

    def __call__(self, **feeds: np.ndarray) -> list[np.ndarray]:
        """``run`` with the feeds as keyword arguments."""
        return self.run(feeds)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def feeds_and_input(
        self, feeds: Mapping[str, np.ndarray]
    ) -> tuple[Callable[[str], np.ndarray | None], np.ndarray]:
        """``get(input name of the op)`` over the constants and ``feeds``, and the input
        ``X`` time-major ``(T, B, I)``, contiguous."""
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"feeds: missing graph input {missing[0]!r}")
        values = {**self.constants, **{k: np.asarray(v) for k, v in feeds.items()}}

        def get(key: str) -> np.ndarray | None:
            return values.get(self.inputs[key]) if self.inputs[key] else None

        x = get("X")
        if x is None or x.dtype not in (np.float32, np.float64):
            raise TypeError(f"X: expected a float32 or float64 array, found {type(x).__name__}")
        if self.layout == 1:
            x = x.transpose(1, 0, 2)
        return get, np.ascontiguousarray(x)

    def initial(self, state: np.ndarray | None) -> np.ndarray | None:
        """An initial state input as ``(D, B, H)`` whatever the layout."""
        if state is None or self.layout == 0:
            return state
        return state.transpose(1, 0, 2)

    def outputs(self, ys: list[np.ndarray], *finals: list[np.ndarray]) -> list[np.ndarray]:
        """The graph outputs, in order, from each direction's ``y (T, B, H)`` and final
        states ``(B, H)`` (one list per state, in the op's output order after ``Y``)."""
        Y = np.stack(ys, axis=1)
        states = [np.stack(f) for f in finals]
        if self.layout == 1:
            Y = Y.transpose(2, 0, 1, 3)
            states = [s.transpose(1, 0, 2) for s in states]
        results = dict(zip((self.node_outputs[k] for k in self.output_names_of_op), [Y, *states]))
        return [results[name] for name in self.output_names]

    def constant_weights(self, keys: tuple[str, ...], target: str) -> None:
        """Refuse weights fed at run time for a conversion to a kioku layer."""
        for key in keys:
            if self.inputs[key] and self.inputs[key] not in self.constants:
                raise ValueError(f"{key}: expected a constant (initializer) for {target}")

    @classmethod
    def load(cls, path_or_model: object) -> OnnxRecurrentNode:
        """From a path (errors name the file) or an ``onnx.ModelProto``."""
        onnx = require_onnx()
        if isinstance(path_or_model, (str, os.PathLike)):
            model = load_onnx_file(path_or_model)
            try:
                return cls(model)
            except (ValueError, TypeError) as error:  # name the file the node came from
                raise type(error)(f"{os.fspath(path_or_model)}: {error}") from None
        if not isinstance(path_or_model, onnx.ModelProto):
            raise TypeError(
                "path_or_model: expected a path or onnx.ModelProto, found "
                f"{type(path_or_model).__name__}"
            )
        return cls(path_or_model)
