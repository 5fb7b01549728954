"""One GRU direction over a whole sequence, and its backward.

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` units. Weights follow
``torch.nn.GRU``: ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``,
``bias_hh (3H,)``, rows in gate order reset, update, new. For one step::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)        reset gate
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)        update gate
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))     new state (reset_after=True)
    n  = tanh(x W_in + b_in + (r * h) W_hn + b_hn)     new state (reset_after=False)
    h' = (1 - z) * n + z * h

``reset_after=True`` is PyTorch's GRU (ONNX ``linear_before_reset=1``, Keras'
default); ``reset_after=False`` is the original GRU of Cho et al. 2014 (ONNX's
default, Keras ``reset_after=False``). Because ``b_hn`` sits inside ``r * (...)`` in the
first form, the two biases cannot be summed there; the reset and update rows of both
biases are summed into the input projection.

The input projection of every step is one GEMM before the loop; the weight gradients
are GEMMs after it; the loop writes into buffers allocated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .activations import sigmoid, tanh
from .sequence import HiddenSteps, final_slot, length_mask, state_slots, step_order, step_slots


@dataclass
class GRUCache(HiddenSteps):
    """What the forward keeps for the backward (and for inspection).

    ``gates (T, B, 3H)`` activated r, z, n; ``h_state (T+1, B, H)`` in the slot layout
    of :mod:`kioku.functional.sequence`; ``recurrent_n (T, B, H)`` the recurrent input of
    the new-state gate: ``h W_hn + b_hn`` (reset_after) or ``r * h`` (not); ``mask (T, B)``
    or ``None``. At masked steps these hold values that were not used.
    """

    x: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    gates: np.ndarray
    h_state: np.ndarray
    recurrent_n: np.ndarray
    mask: np.ndarray | None
    reverse: bool
    reset_after: bool


class GRUGrads(NamedTuple):
    """Gradients of one direction: ``dx (T, B, I)`` (``None`` if not asked),
    ``dweight_ih (3H, I)``, ``dweight_hh (3H, H)``, ``dbias_ih (3H,)``, ``dbias_hh (3H,)``,
    ``dh0 (B, H)``."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    dweight_hh: np.ndarray
    dbias_ih: np.ndarray
    dbias_hh: np.ndarray
    dh0: np.ndarray


def input_bias(
    bias_ih: np.ndarray | None, bias_hh: np.ndarray | None, reset_after: bool, H: int
) -> np.ndarray | None:
    """``(3H,)``: the bias added to the input projection of every step: both biases,
    except ``b_hn`` when ``reset_after`` (it is scaled by ``r`` inside the step)."""
    if bias_ih is None and bias_hh is None:
        return None
    total = np.zeros(3 * H, (bias_ih if bias_ih is not None else bias_hh).dtype)
    if bias_ih is not None:
        total += bias_ih
    if bias_hh is not None:
        total[: 2 * H] += bias_hh[: 2 * H]
        if not reset_after:
            total[2 * H :] += bias_hh[2 * H :]
    return total


def gru_forward(
    x: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None,
    bias_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    reset_after: bool = True,
    keep_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, GRUCache | None]:
    """Run one GRU direction over ``x (T, B, I)`` from ``h0 (B, H)`` (zeros if ``None``).

    ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih``/``bias_hh (3H,)`` or
    ``None``; ``lengths (B,)`` with packed-sequence semantics (outputs past a length are
    zero, the final state is the state at the last valid step, ``reverse`` starts
    there). Returns ``y (T, B, H)``, ``h_n (B, H)`` and the cache; with
    ``keep_cache=False`` ``None`` in its place, and only two state slots (trading roles
    every step) and one step's ``recurrent_n`` kept.
    """
    T, B, I = x.shape
    H = weight_hh.shape[1]
    dtype = x.dtype
    gates = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, 3 * H)
    folded = input_bias(bias_ih, bias_hh, reset_after, H)
    if folded is not None:
        gates += folded
    b_hn = bias_hh[2 * H :] if reset_after and bias_hh is not None else None
    h_state = state_slots(h0, T, (B, H), dtype, reverse, keep_cache)
    recurrent_n = np.empty((T if keep_cache else 1, B, H), dtype)
    mask = length_mask(lengths, T, B)
    y = np.empty((T, B, H), dtype)
    recurrent = np.empty((B, 3 * H), dtype)
    w_rz_t, w_n_t = weight_hh[: 2 * H].T, weight_hh[2 * H :].T

    for s, t in enumerate(step_order(T, reverse)):
        slot_in, slot_out = step_slots(s, t, reverse, keep_cache)
        h_prev, h_next = h_state[slot_in], h_state[slot_out]
        a = gates[t]
        n_input = recurrent_n[t if keep_cache else 0]
        if reset_after:
            np.matmul(h_prev, weight_hh.T, out=recurrent)
            a[:, : 2 * H] += recurrent[:, : 2 * H]
            np.copyto(n_input, recurrent[:, 2 * H :])
            if b_hn is not None:
                n_input += b_hn
        else:
            np.matmul(h_prev, w_rz_t, out=recurrent[:, : 2 * H])
            a[:, : 2 * H] += recurrent[:, : 2 * H]
        reset_gate = sigmoid(a[:, :H], a[:, :H])
        update_gate = sigmoid(a[:, H : 2 * H], a[:, H : 2 * H])
        new_state = a[:, 2 * H :]
        if reset_after:  # n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
            np.multiply(reset_gate, n_input, out=recurrent[:, 2 * H :])
        else:  # n = tanh(x W_in + b_in + (r * h) W_hn + b_hn)
            np.multiply(reset_gate, h_prev, out=n_input)
            np.matmul(n_input, w_n_t, out=recurrent[:, 2 * H :])
        new_state += recurrent[:, 2 * H :]
        tanh(new_state, new_state)
        np.subtract(h_prev, new_state, out=h_next)  # h' = n + z * (h - n)
        h_next *= update_gate
        h_next += new_state
        if mask is None:
            y[t] = h_next
        else:  # past its length a sequence keeps its state
            np.copyto(h_next, h_prev, where=~mask[t, :, None])
            np.multiply(h_next, mask[t, :, None], out=y[t])

    h_n = h_state[final_slot(T, reverse, keep_cache)].copy()
    if not keep_cache:
        return y, h_n, None
    cache = GRUCache(
        x, weight_ih, weight_hh, gates, h_state, recurrent_n, mask, bool(reverse), reset_after
    )
    return y, h_n, cache


def gru_backward(
    dy: np.ndarray,
    cache: GRUCache,
    dh_n: np.ndarray | None = None,
    need_dx: bool = True,
    dh_trace: np.ndarray | None = None,
) -> GRUGrads:
    """Backprop through time for one direction.

    ``dy (T, B, H)`` is the gradient of the loss for the outputs, ``dh_n (B, H)`` for the
    final state (zeros if ``None``). ``dh_trace (T, B, H)``, when given, receives
    dL/dh_t of every step (the total gradient reaching the state leaving step ``t``).
    """
    x, gates, mask = cache.x, cache.gates, cache.mask
    T, B, I = x.shape
    H = cache.h_state.shape[2]
    r = int(cache.reverse)
    dtype = x.dtype
    w_rz, w_n = cache.weight_hh[: 2 * H], cache.weight_hh[2 * H :]

    d_input = np.empty_like(gates)  # gradient of the input projection's r, z, n
    d_recurrent = np.empty_like(gates)  # gradient of the recurrent projection's r, z, n
    dh = np.zeros((B, H), dtype) if dh_n is None else np.array(dh_n, dtype)
    if mask is not None:
        dy = dy * mask[:, :, None]  # outputs past a length are constants
    dh_step = np.empty((B, H), dtype)
    dh_rec = np.empty((B, H), dtype)
    d_reset_h = np.empty((B, H), dtype)
    slope = np.empty((B, H), dtype)

    for t in reversed(step_order(T, cache.reverse)):
        h_prev = cache.h_state[t + r]
        reset_gate, update_gate, new_state = (
            gates[t, :, :H],
            gates[t, :, H : 2 * H],
            gates[t, :, 2 * H :],
        )
        d_reset, d_update, d_new = (
            d_input[t, :, :H],
            d_input[t, :, H : 2 * H],
            d_input[t, :, 2 * H :],
        )
        d_rec_n = d_recurrent[t, :, 2 * H :]

        np.add(dh, dy[t], out=dh_step)
        if dh_trace is not None:
            dh_trace[t] = dh_step
        np.subtract(h_prev, new_state, out=d_update)  # h' = n + z * (h - n)
        d_update *= dh_step
        np.subtract(1, update_gate, out=d_new)
        d_new *= dh_step
        np.multiply(new_state, new_state, out=slope)  # n = tanh(...): tanh' = 1 - n^2
        np.subtract(1, slope, out=slope)
        d_new *= slope
        if cache.reset_after:  # ... + r * (h W_hn + b_hn)
            np.multiply(d_new, cache.recurrent_n[t], out=d_reset)
            np.multiply(d_new, reset_gate, out=d_rec_n)
        else:  # ... + (r * h) W_hn + b_hn
            np.copyto(d_rec_n, d_new)
            np.matmul(d_new, w_n, out=d_reset_h)
            np.multiply(d_reset_h, h_prev, out=d_reset)
        np.subtract(1, reset_gate, out=slope)  # r = sigmoid(...): s' = s (1 - s)
        slope *= reset_gate
        d_reset *= slope
        np.subtract(1, update_gate, out=slope)  # z = sigmoid(...)
        slope *= update_gate
        d_update *= slope
        if mask is not None:
            d_input[t] *= mask[t, :, None]
            d_rec_n *= mask[t, :, None]
        d_recurrent[t, :, : 2 * H] = d_input[t, :, : 2 * H]
        # the state reaches h' directly (z * h), through r and z, and through n
        if cache.reset_after:
            np.matmul(d_recurrent[t], cache.weight_hh, out=dh_rec)
        else:
            np.matmul(d_recurrent[t, :, : 2 * H], w_rz, out=dh_rec)
            d_reset_h *= reset_gate
            if mask is not None:
                d_reset_h *= mask[t, :, None]
            dh_rec += d_reset_h
        np.multiply(dh_step, update_gate, out=slope)
        dh_rec += slope
        if mask is None:
            dh, dh_rec = dh_rec, dh
        else:  # a finished sequence passes its gradient through unchanged
            np.copyto(dh, dh_rec, where=mask[t, :, None])

    flat_in = d_input.reshape(T * B, 3 * H)
    flat_rec = d_recurrent.reshape(T * B, 3 * H)
    dx = (flat_in @ cache.weight_ih).reshape(T, B, I) if need_dx else None
    dweight_ih = flat_in.T @ x.reshape(T * B, I)
    h_in = cache.h_in.reshape(T * B, H)
    if cache.reset_after:
        dweight_hh = flat_rec.T @ h_in
    else:
        dweight_hh = np.empty((3 * H, H), dtype)
        dweight_hh[: 2 * H] = flat_rec[:, : 2 * H].T @ h_in
        dweight_hh[2 * H :] = flat_rec[:, 2 * H :].T @ cache.recurrent_n.reshape(T * B, H)
    return GRUGrads(dx, dweight_ih, dweight_hh, flat_in.sum(axis=0), flat_rec.sum(axis=0), dh)
