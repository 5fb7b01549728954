"""The benchmarked workloads: one LSTM (stack) with the same weights in kioku, PyTorch
and ONNX Runtime, as zero-argument callables that run one training step or one
inference.

Training step = forward of the whole sequence plus backward of the summed output
(``dy = 1``), parameter gradients and the input gradient produced on both sides: a
layer as users run it under an embedding or another layer (PyTorch's LSTM backward
computes the input gradient whether or not it is asked for, so leaving it out would
time kioku on less work than its peer). Inference = forward only. PyTorch and ONNX Runtime are
imported lazily.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..nn import no_grad as _no_grad  # at import: a per-call import costs the call timing


@dataclass(frozen=True)
class Shape:
    """``T`` steps, ``B`` sequences, ``H`` cells and input features (``I = H``)."""

    steps: int
    batch: int
    hidden: int
    layers: int = 1
    bidirectional: bool = False

    @property
    def name(self) -> str:
        extra = f" {self.layers}L-bi" if self.bidirectional else ""
        return f"T={self.steps} B={self.batch} H={self.hidden}{extra}"

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def forward_flops(self) -> float:
        """GEMM flops of one forward (element-wise work not counted)."""
        total, size_in = 0.0, self.hidden
        for _ in range(self.layers):
            per_direction = 2.0 * self.steps * self.batch * 4 * self.hidden
            total += self.directions * per_direction * (size_in + self.hidden)
            size_in = self.hidden * self.directions
        return total

    def training_flops(self) -> float:
        """Convention: forward + backward = 3x the forward's GEMM flops."""
        return 3.0 * self.forward_flops()


SHAPES = (
    Shape(35, 20, 200),
    Shape(35, 20, 650),
    Shape(100, 64, 256),
    Shape(50, 1, 64),
    Shape(200, 32, 128),
    Shape(35, 20, 256, layers=2, bidirectional=True),
)
QUICK_SHAPES = (Shape(35, 20, 200), Shape(50, 1, 64))


def torch_state(shape: Shape, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights with PyTorch ``nn.LSTM`` names, uniform(-1/sqrt(H), ..)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(shape.hidden)
    state, size_in, H = {}, shape.hidden, shape.hidden
    for layer in range(shape.layers):
        for direction in range(shape.directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            for name, dims in (
                ("weight_ih", (4 * H, size_in)),
                ("weight_hh", (4 * H, H)),
                ("bias_ih", (4 * H,)),
                ("bias_hh", (4 * H,)),
            ):
                state[name + sfx] = rng.uniform(-bound, bound, dims).astype(np.float32)
        size_in = H * shape.directions
    return state


def inputs(shape: Shape, seed: int = 1) -> np.ndarray:
    """``x (T, B, H)`` float32 standard normal."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((shape.steps, shape.batch, shape.hidden)).astype(np.float32)


def kioku_model(shape: Shape, state: dict[str, np.ndarray]):
    from ..nn import LSTM

    model = LSTM(
        shape.hidden, shape.hidden, num_layers=shape.layers, bidirectional=shape.bidirectional
    )
    model.load_state_dict(state)
    return model


def kioku_train(shape: Shape, state: dict[str, np.ndarray], x: np.ndarray) -> Callable[[], object]:
    """One kioku training step on ``x (T, B, H)`` with the input gradient; the step
    returns ``dx (T, B, H)``."""
    model = kioku_model(shape, state)
    model.train()
    dy = np.ones((shape.steps, shape.batch, shape.hidden * shape.directions), np.float32)

    def step() -> np.ndarray:
        model.zero_grad()
        model(x)
        return model.backward(dy)[0]

    step.model = model
    return step


def no_grad() -> contextlib.AbstractContextManager:
    """``kioku.nn.no_grad()``: forwards inside it keep no cache for a backward."""
    return _no_grad()


def kioku_infer(shape: Shape, state: dict[str, np.ndarray], x: np.ndarray):
    """Inference as a user runs it: eval mode, inside :func:`no_grad`."""
    model = kioku_model(shape, state)
    model.eval()

    def run() -> np.ndarray:
        with no_grad():
            return model(x)[0]

    run.model = model
    return run


def peer_threads() -> int:
    """Threads PyTorch and ONNX Runtime get: every core this process may use, as kioku's
    default (a comparison with every library on all cores)."""
    from ..kernels._threads import usable_cores

    return usable_cores()


def torch_model(shape: Shape, state: dict[str, np.ndarray], threads: int | None = None):
    import torch

    torch.set_num_threads(threads or peer_threads())
    model = torch.nn.LSTM(
        shape.hidden, shape.hidden, num_layers=shape.layers, bidirectional=shape.bidirectional
    )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def torch_run(
    shape: Shape, state: dict[str, np.ndarray], x: np.ndarray, threads: int | None, training: bool
):
    """PyTorch's LSTM of ``shape`` with ``state``, in train or eval mode, and ``x (T, B, H)``
    as a tensor sharing its memory."""
    import torch

    model = torch_model(shape, state, threads)
    model.train(training)
    return model, torch.from_numpy(x)


def torch_train(
    shape: Shape, state: dict[str, np.ndarray], x: np.ndarray, threads: int | None = None
):
    """One PyTorch training step on ``x (T, B, H)`` with the input gradient
    (``x.requires_grad``); the step returns ``x.grad (T, B, H)``."""
    model, xt = torch_run(shape, state, x, threads, training=True)
    xt.requires_grad_(True)

    def step():
        model.zero_grad(set_to_none=False)  # gradient buffers persist, as kioku's do
        xt.grad = None
        y, _ = model(xt)
        y.sum().backward()
        return xt.grad

    return step


def torch_infer(
    shape: Shape, state: dict[str, np.ndarray], x: np.ndarray, threads: int | None = None
):
    import torch

    model, xt = torch_run(shape, state, x, threads, training=False)

    def run() -> np.ndarray:
        with torch.inference_mode():
            return model(xt)[0].numpy()

    return run


def onnx_bytes(shape: Shape, state: dict[str, np.ndarray]) -> bytes:
    """An ONNX model of the stack: one ``LSTM`` node per layer (gate order i, o, f, c)."""
    from onnx import TensorProto, helper, numpy_helper

    H = shape.hidden

    def iofc(w: np.ndarray) -> np.ndarray:
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    nodes, inits, current = [], [], "x"
    direction = "bidirectional" if shape.bidirectional else "forward"
    sfxs = ("", "_reverse")[: shape.directions]
    for layer in range(shape.layers):
        W = np.stack([iofc(state[f"weight_ih_l{layer}{s}"]) for s in sfxs])
        R = np.stack([iofc(state[f"weight_hh_l{layer}{s}"]) for s in sfxs])
        Bias = np.stack(
            [
                np.concatenate(
                    [iofc(state[f"bias_ih_l{layer}{s}"]), iofc(state[f"bias_hh_l{layer}{s}"])]
                )
                for s in sfxs
            ]
        )
        names = [f"W{layer}", f"R{layer}", f"B{layer}"]
        inits += [numpy_helper.from_array(a, n) for a, n in zip((W, R, Bias), names)]
        y = f"y{layer}"
        nodes.append(
            helper.make_node("LSTM", [current, *names], [y], hidden_size=H, direction=direction)
        )
        # Y is (T, D, B, H): to (T, B, D * H)
        nodes.append(helper.make_node("Transpose", [y], [f"yt{layer}"], perm=[0, 2, 1, 3]))
        current = "y" if layer == shape.layers - 1 else f"x{layer + 1}"
        nodes.append(helper.make_node("Reshape", [f"yt{layer}", "flat"], [current]))
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "flat"))
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [shape.steps, shape.batch, H])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "lstm", [x_info], [y_info], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def ort_infer(
    shape: Shape, state: dict[str, np.ndarray], x: np.ndarray, threads: int | None = None
):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or peer_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        onnx_bytes(shape, state), options, providers=["CPUExecutionProvider"]
    )
    return lambda: session.run(None, {"x": x})[0]
