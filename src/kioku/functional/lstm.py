"""One LSTM direction over a whole sequence: the seed's six equations and their backward.

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` cells, ``P`` the size
of the hidden state (``P = H`` without projection, ``proj_size`` with it). Weights follow
``torch.nn.LSTM``: ``weight_ih (4H, I)``, ``weight_hh (4H, P)``, ``weight_hr (P, H)``, rows
in gate order input, forget, candidate, output. ``bias`` is ``bias_ih + bias_hh``.

Forward, for one step::

    i = sigmoid(x W_ii + h W_hi + b_i)      input gate
    f = sigmoid(x W_if + h W_hf + b_f)      forget gate
    g = tanh(x W_ig + h W_hg + b_g)         candidate cell
    o = sigmoid(x W_io + h W_ho + b_o)      output gate
    c' = f * c + i * g                      memory cell
    h' = o * tanh(c')   (then h' W_hr with projection)

The input projection of every step is one GEMM before the loop; the weight gradients
are GEMMs after it; the loop itself writes into buffers allocated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .activations import sigmoid, tanh
from .sequence import length_mask, step_order


@dataclass
class LSTMCache:
    """What the forward keeps for the backward (and for inspection).

    ``gates (T, B, 4H)`` activated i, f, g, o; ``h_state (T+1, B, P)`` and
    ``c_state (T+1, B, H)`` in the slot layout of :mod:`kioku.functional.sequence`;
    ``tanh_c (T, B, H)`` tanh of the cell leaving each step; ``hidden (T, B, H)`` the
    unprojected ``o * tanh(c)`` (projection only, else ``None``); ``mask (T, B)`` or
    ``None``. At masked steps gates and tanh_c hold values that were not used.
    """

    x: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    weight_hr: np.ndarray | None
    gates: np.ndarray
    h_state: np.ndarray
    c_state: np.ndarray
    tanh_c: np.ndarray
    hidden: np.ndarray | None
    mask: np.ndarray | None
    reverse: bool

    @property
    def h_in(self) -> np.ndarray:
        """``(T, B, P)``: the hidden state entering each step, time-indexed."""
        r = int(self.reverse)
        return self.h_state[r : r + self.x.shape[0]]

    @property
    def c_in(self) -> np.ndarray:
        """``(T, B, H)``: the cell entering each step, time-indexed."""
        r = int(self.reverse)
        return self.c_state[r : r + self.x.shape[0]]

    @property
    def c_out(self) -> np.ndarray:
        """``(T, B, H)``: the cell leaving each step, time-indexed."""
        r = 1 - int(self.reverse)
        return self.c_state[r : r + self.x.shape[0]]

    @property
    def h_out(self) -> np.ndarray:
        """``(T, B, P)``: the hidden state leaving each step, time-indexed."""
        r = 1 - int(self.reverse)
        return self.h_state[r : r + self.x.shape[0]]


class LSTMGrads(NamedTuple):
    """Gradients of one direction: ``dx (T, B, I)`` (``None`` if not asked),
    ``dweight_ih (4H, I)``, ``dweight_hh (4H, P)``, ``dbias (4H,)``,
    ``dweight_hr (P, H)`` or ``None``, ``dh0 (B, P)``, ``dc0 (B, H)``."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    dweight_hh: np.ndarray
    dbias: np.ndarray
    dweight_hr: np.ndarray | None
    dh0: np.ndarray
    dc0: np.ndarray


def lstm_forward(
    x: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    weight_hr: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LSTMCache]:
    """Run one LSTM direction over ``x (T, B, I)``.

    ``h0 (B, P)`` and ``c0 (B, H)`` default to zeros; ``lengths (B,)`` gives each
    sequence's valid steps (packed-sequence semantics: outputs past the length are
    zero, the final state is the state at the last valid step, and ``reverse`` starts
    at that step). Returns ``y (T, B, P)``, ``h_n (B, P)``, ``c_n (B, H)`` and the cache.
    """
    T, B, I = x.shape
    H = weight_ih.shape[0] // 4
    P = weight_hr.shape[0] if weight_hr is not None else H
    dtype = x.dtype
    r = int(reverse)

    gates = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, 4 * H)
    if bias is not None:
        gates += bias
    h_state = np.empty((T + 1, B, P), dtype)
    c_state = np.empty((T + 1, B, H), dtype)
    h_state[T * r] = 0 if h0 is None else h0
    c_state[T * r] = 0 if c0 is None else c0
    tanh_c = np.empty((T, B, H), dtype)
    hidden = np.empty((T, B, H), dtype) if weight_hr is not None else None
    mask = length_mask(lengths, T, B)
    y = np.empty((T, B, P), dtype)
    recurrent = np.empty((B, 4 * H), dtype)
    new_info = np.empty((B, H), dtype)
    w_hh_t = weight_hh.T

    for t in step_order(T, reverse):
        h_prev, c_prev = h_state[t + r], c_state[t + r]
        h_next, c_next = h_state[t + 1 - r], c_state[t + 1 - r]
        a = gates[t]
        np.matmul(h_prev, w_hh_t, out=recurrent)
        a += recurrent
        input_gate, forget_gate = (
            sigmoid(a[:, :H], a[:, :H]),
            sigmoid(a[:, H : 2 * H], a[:, H : 2 * H]),
        )
        candidate = tanh(a[:, 2 * H : 3 * H], a[:, 2 * H : 3 * H])
        output_gate = sigmoid(a[:, 3 * H :], a[:, 3 * H :])
        np.multiply(forget_gate, c_prev, out=c_next)  # c' = f * c + i * g
        np.multiply(input_gate, candidate, out=new_info)
        c_next += new_info
        tanh(c_next, tanh_c[t])
        unprojected = h_next if hidden is None else hidden[t]
        np.multiply(output_gate, tanh_c[t], out=unprojected)  # h' = o * tanh(c')
        if weight_hr is not None:
            np.matmul(unprojected, weight_hr.T, out=h_next)
        if mask is None:
            y[t] = h_next
        else:
            finished = ~mask[t, :, None]  # past its length a sequence keeps its state
            np.copyto(c_next, c_prev, where=finished)
            np.copyto(h_next, h_prev, where=finished)
            np.multiply(h_next, mask[t, :, None], out=y[t])

    cache = LSTMCache(
        x, weight_ih, weight_hh, weight_hr, gates, h_state, c_state, tanh_c, hidden, mask, reverse
    )
    final = T * (1 - r)
    return y, h_state[final].copy(), c_state[final].copy(), cache


def lstm_backward(
    dy: np.ndarray,
    cache: LSTMCache,
    dh_n: np.ndarray | None = None,
    dc_n: np.ndarray | None = None,
    need_dx: bool = True,
    dh_trace: np.ndarray | None = None,
    dc_trace: np.ndarray | None = None,
) -> LSTMGrads:
    """Backprop through time for one direction.

    ``dy (T, B, P)`` is the gradient of the loss for the outputs; ``dh_n (B, P)`` and
    ``dc_n (B, H)`` for the final state (zeros if ``None``). ``dh_trace (T, B, P)`` and
    ``dc_trace (T, B, H)``, when given, receive dL/dh_t and dL/dc_t of every step
    (the total gradient reaching the state leaving step ``t``).
    """
    x, gates, mask = cache.x, cache.gates, cache.mask
    T, B, I = x.shape
    H = gates.shape[2] // 4
    P = cache.h_state.shape[2]
    r = int(cache.reverse)
    dtype = x.dtype

    dgates = np.empty_like(gates)
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
    dh_out = np.empty((T, B, P), dtype) if cache.hidden is not None else None
    if mask is not None:
        dy = dy * mask[:, :, None]  # outputs past a length are constants
    dh_step = np.empty((B, P), dtype)
    dc_step = np.empty((B, H), dtype)
    dh_rec = np.empty((B, P), dtype)
    dc_rec = np.empty((B, H), dtype)
    slope = np.empty((B, H), dtype)
    d_hidden = np.empty((B, H), dtype) if dh_out is not None else dh_step

    for t in reversed(step_order(T, cache.reverse)):
        c_prev = cache.c_state[t + r]
        input_gate, forget_gate = gates[t, :, :H], gates[t, :, H : 2 * H]
        candidate, output_gate = gates[t, :, 2 * H : 3 * H], gates[t, :, 3 * H :]
        d_input, d_forget = dgates[t, :, :H], dgates[t, :, H : 2 * H]
        d_candidate, d_output = dgates[t, :, 2 * H : 3 * H], dgates[t, :, 3 * H :]
        tanh_c = cache.tanh_c[t]

        np.add(dh, dy[t], out=dh_step)
        if dh_trace is not None:
            dh_trace[t] = dh_step
        if dh_out is not None:  # h' = W_hr (o * tanh(c'))
            dh_out[t] = dh_step
            np.matmul(dh_step, cache.weight_hr, out=d_hidden)
        np.multiply(d_hidden, tanh_c, out=d_output)  # o * tanh(c')
        np.multiply(tanh_c, tanh_c, out=slope)
        np.subtract(1, slope, out=slope)
        slope *= output_gate
        slope *= d_hidden
        np.add(dc, slope, out=dc_step)
        if dc_trace is not None:
            dc_trace[t] = dc_step
        np.multiply(dc_step, c_prev, out=d_forget)  # c' = f * c + i * g
        np.multiply(dc_step, candidate, out=d_input)
        np.multiply(dc_step, input_gate, out=d_candidate)
        np.multiply(dc_step, forget_gate, out=dc_rec)
        for gate, d_gate in (
            (input_gate, d_input),
            (forget_gate, d_forget),
            (output_gate, d_output),
        ):
            np.subtract(1, gate, out=slope)  # sigmoid' = s (1 - s)
            slope *= gate
            d_gate *= slope
        np.multiply(candidate, candidate, out=slope)  # tanh' = 1 - tanh^2
        np.subtract(1, slope, out=slope)
        d_candidate *= slope
        if mask is not None:
            dgates[t] *= mask[t, :, None]
            if dh_out is not None:
                dh_out[t] *= mask[t, :, None]
        np.matmul(dgates[t], cache.weight_hh, out=dh_rec)
        if mask is None:
            dh, dh_rec = dh_rec, dh
            dc, dc_rec = dc_rec, dc
        else:  # a finished sequence passes its gradient through unchanged
            np.copyto(dh, dh_rec, where=mask[t, :, None])
            np.copyto(dc, dc_rec, where=mask[t, :, None])

    flat = dgates.reshape(T * B, 4 * H)
    dx = (flat @ cache.weight_ih).reshape(T, B, I) if need_dx else None
    dweight_ih = flat.T @ x.reshape(T * B, I)
    dweight_hh = flat.T @ cache.h_in.reshape(T * B, P)
    dbias = flat.sum(axis=0)
    dweight_hr = None
    if dh_out is not None:
        dweight_hr = dh_out.reshape(T * B, P).T @ cache.hidden.reshape(T * B, H)
    return LSTMGrads(dx, dweight_ih, dweight_hh, dbias, dweight_hr, dh, dc)
