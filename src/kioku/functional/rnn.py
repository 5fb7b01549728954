"""One simple (Elman) RNN direction over a whole sequence, and its backward.

``h' = tanh(x W_ih^T + h W_hh^T + b)`` (or ReLU): the network the seed starts from,
whose gradient through ``W_hh`` and ``tanh'`` shrinks or grows at every step.
Shapes as in :mod:`kioku.functional.lstm` with ``P = H``: ``weight_ih (H, I)``,
``weight_hh (H, H)``, ``bias (H,)`` = ``bias_ih + bias_hh``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .activations import tanh
from .sequence import HiddenSteps, final_slot, length_mask, state_slots, step_order, step_slots

NONLINEARITIES = ("tanh", "relu")


@dataclass
class RNNCache(HiddenSteps):
    """``h_state (T+1, B, H)`` in the slot layout of :mod:`kioku.functional.sequence`."""

    x: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    h_state: np.ndarray
    mask: np.ndarray | None
    reverse: bool
    nonlinearity: str


class RNNGrads(NamedTuple):
    """``dx (T, B, I)`` or ``None``, ``dweight_ih (H, I)``, ``dweight_hh (H, H)``,
    ``dbias (H,)``, ``dh0 (B, H)``."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    dweight_hh: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray


def rnn_forward(
    x: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
    keep_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, RNNCache | None]:
    """Run one RNN direction over ``x (T, B, I)`` from ``h0 (B, H)``; returns
    ``y (T, B, H)``, ``h_n (B, H)`` and the cache. Lengths as for the LSTM. With
    ``keep_cache=False`` the cache is ``None`` and only two state slots are kept,
    which trade roles every step."""
    T, B, I = x.shape
    H = weight_ih.shape[0]
    pre = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, H)
    if bias is not None:
        pre += bias
    h_state = state_slots(h0, T, (B, H), x.dtype, reverse, keep_cache)
    mask = length_mask(lengths, T, B)
    y = np.empty((T, B, H), x.dtype)
    recurrent = np.empty((B, H), x.dtype)
    for s, t in enumerate(step_order(T, reverse)):
        slot_in, slot_out = step_slots(s, t, reverse, keep_cache)
        h_prev, h_next = h_state[slot_in], h_state[slot_out]
        np.matmul(h_prev, weight_hh.T, out=recurrent)
        np.add(pre[t], recurrent, out=h_next)
        if nonlinearity == "tanh":
            tanh(h_next, h_next)
        else:
            np.maximum(h_next, 0, out=h_next)
        if mask is None:
            y[t] = h_next
        else:
            np.copyto(h_next, h_prev, where=~mask[t, :, None])
            np.multiply(h_next, mask[t, :, None], out=y[t])
    h_n = h_state[final_slot(T, reverse, keep_cache)].copy()
    if not keep_cache:
        return y, h_n, None
    return y, h_n, RNNCache(x, weight_ih, weight_hh, h_state, mask, reverse, nonlinearity)


def rnn_backward(
    dy: np.ndarray,
    cache: RNNCache,
    dh_n: np.ndarray | None = None,
    need_dx: bool = True,
    dh_trace: np.ndarray | None = None,
) -> RNNGrads:
    """Backprop through time: ``dy (T, B, H)``, ``dh_n (B, H)``; ``dh_trace (T, B, H)``
    receives dL/dh_t of every step when given."""
    x, mask = cache.x, cache.mask
    T, B, I = x.shape
    H = cache.weight_hh.shape[0]
    r = int(cache.reverse)
    dpre = np.empty((T, B, H), x.dtype)
    dh = np.zeros((B, H), x.dtype) if dh_n is None else np.array(dh_n, x.dtype)
    dh_rec = np.empty((B, H), x.dtype)
    if mask is not None:
        dy = dy * mask[:, :, None]
    for t in reversed(step_order(T, cache.reverse)):
        h_next = cache.h_state[t + 1 - r]
        np.add(dh, dy[t], out=dpre[t])
        if dh_trace is not None:
            dh_trace[t] = dpre[t]
        if cache.nonlinearity == "tanh":  # tanh' = 1 - h'^2
            np.multiply(h_next, h_next, out=dh_rec)
            np.subtract(1, dh_rec, out=dh_rec)
            dpre[t] *= dh_rec
        else:
            dpre[t] *= h_next > 0
        if mask is not None:
            dpre[t] *= mask[t, :, None]
        np.matmul(dpre[t], cache.weight_hh, out=dh_rec)
        if mask is None:
            dh, dh_rec = dh_rec, dh
        else:
            np.copyto(dh, dh_rec, where=mask[t, :, None])
    flat = dpre.reshape(T * B, H)
    dx = (flat @ cache.weight_ih).reshape(T, B, I) if need_dx else None
    return RNNGrads(
        dx,
        flat.T @ x.reshape(T * B, I),
        flat.T @ cache.h_in.reshape(T * B, H),
        flat.sum(axis=0),
        dh,
    )
