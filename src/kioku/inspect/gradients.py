"""Gradient flow: how much of the loss's gradient reaches the state of every step.

``dL/dh_t`` and ``dL/dc_t`` are the total gradients reaching the hidden state and the
memory cell leaving step ``t`` (what the backward pass carries back through time). A
simple RNN's ``|dL/dh_t|`` shrinks geometrically as ``t`` moves away from the loss; the
LSTM's cell path keeps it (the seed's 勾配消失 and its cure). Every recurrent layer is
covered: LSTM (h, c), RNN and GRU (h), sLSTM (h, c, n, m).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..nn import Module
from ..nn.recurrent import RecurrentStack
from .modules import recurrent_layers


@dataclass
class StateGradients:
    """One direction of one layer after one backward: ``dh (T, B, P)`` = dL/dh_t and,
    for a cell with a memory cell (LSTM, sLSTM), ``dc (T, B, H)`` = dL/dc_t (``None`` for
    an RNN or GRU); ``states`` every state component's gradient by the layer's
    ``state_names`` (an sLSTM's ``h, c, n, m``), each ``(T, B, S)``."""

    module: str
    layer: int
    direction: int
    dh: np.ndarray
    dc: np.ndarray | None
    states: dict[str, np.ndarray] | None = None

    @property
    def dh_norm(self) -> np.ndarray:
        """``(T,)``: the L2 norm of dL/dh_t over features, averaged over the batch."""
        return step_norms(self.dh)

    @property
    def dc_norm(self) -> np.ndarray | None:
        """``(T,)``: the L2 norm of dL/dc_t over cells, averaged over the batch."""
        return None if self.dc is None else step_norms(self.dc)


def step_norms(grad: np.ndarray) -> np.ndarray:
    """``grad (T, B, F)`` -> ``(T,)``: per-step L2 norm over ``F``, mean over ``B``."""
    grad = np.asarray(grad)
    if grad.ndim != 3:
        raise ValueError(f"grad: expected shape (T, B, F), found {grad.shape}")
    return np.linalg.norm(grad.astype(np.float64), axis=2).mean(axis=1)


def _recorder(name: str, into: list[StateGradients]):
    """A backward hook that appends each direction's state gradients to ``into``."""

    def hook(module, layer: int, direction: int, state_grads: tuple[np.ndarray, ...]) -> None:
        states = dict(zip(module.state_names, state_grads, strict=True))
        record = StateGradients(name, layer, direction, states["h"], states.get("c"), states)
        into.append(record)

    return hook


@contextlib.contextmanager
def record_gradients(model: Module) -> Iterator[list[StateGradients]]:
    """Record dL/dh_t (and dL/dc_t, ...) of every recurrent layer (LSTM, RNN, GRU, SLSTM)
    inside ``model`` for every backward run inside the ``with`` block; yields the
    (growing) list of records."""
    records: list[StateGradients] = []
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(
            "model: expected a module containing a kioku.nn.LSTM, RNN, GRU or SLSTM, found "
            f"none in {type(model).__name__}"
        )
    seen: set[int] = set()
    with contextlib.ExitStack() as hooks:
        for name, layer_module in layers:
            if id(layer_module) not in seen:  # a shared layer is hooked once
                seen.add(id(layer_module))
                hooks.enter_context(layer_module.register_backward_hook(_recorder(name, records)))
        yield records


def gradient_flow(
    layer: RecurrentStack,
    x: np.ndarray,
    dy_last: np.ndarray | None = None,
) -> list[StateGradients]:
    """One forward and one backward of a bare recurrent layer (LSTM, RNN, GRU, SLSTM) with
    the loss on the last step.

    ``x (T, B, I)`` (layout as the layer takes it); the loss is ``L = sum(dy_last * y_T)``
    with ``y_T (B, D*P)`` the output of the last step (``dy_last`` defaults to ones), so
    the records show how the gradient of a loss at the end reaches each earlier step.
    Parameter gradients are added into ``layer.grads`` as by any backward.
    """
    if not isinstance(layer, RecurrentStack):
        raise TypeError(
            f"layer: expected a kioku.nn.LSTM, RNN, GRU or SLSTM, found {type(layer).__name__}"
        )
    out = layer(x)
    y = out[0]
    dy = np.zeros_like(y)
    time_axis = 1 if (layer.batch_first and y.ndim == 3) else 0
    last = [slice(None)] * y.ndim
    last[time_axis] = -1
    if dy_last is None:
        dy[tuple(last)] = 1
    else:
        expected = y[tuple(last)].shape
        dy_last = np.asarray(dy_last, dtype=y.dtype)
        if dy_last.shape != expected:
            raise ValueError(f"dy_last: expected shape {expected}, found {dy_last.shape}")
        dy[tuple(last)] = dy_last
    records: list[StateGradients] = []
    with layer.register_backward_hook(_recorder("", records)):
        layer.backward(dy, None, need_dx=False)
    return records
