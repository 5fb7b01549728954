"""One sLSTM direction over a whole sequence (xLSTM, Beck et al. 2024) and its backward.

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H = K * D`` cells split
into ``K`` heads of ``D``. ``weight_ih (4H, I)`` and ``bias (4H,)`` have rows in gate
order input, forget, cell input z, output, each gate's ``H`` rows in (head, unit)
order: the layout of the input the ``xlstm`` package's sLSTM cell reads.
``recurrent_kernel (K, D, 4, D)`` is that package's external layout
``[head, unit in, gate, unit out]``: the recurrence is block-diagonal over heads.

Forward, for one step, as ``xlstm``'s vanilla backend (``slstm_forward_pointwise``)::

    (ĩ, f̃, z̃, õ) = x W^T + b + h R                  pre-activations, R per head
    log f = logsigmoid(f̃)   (or f̃: exponential forget gate)
    m' = max(ĩ, log f + m)   (m' = ĩ while the sequence's normaliser n is all zero)
    i' = min(exp(ĩ - m'), 1)                        stabilised exponential input gate
    f' = min(exp(log f + m - m'), 1)                stabilised forget gate
    c' = f' c + i' tanh(z̃)                          cell
    n' = f' n + i'                                  normaliser
    h' = sigmoid(õ) c' / n'                         hidden state

The stabiliser ``m`` is not detached: its gradient flows as in the reference (whose
``torch.no_grad()`` around it is commented out), and ``max``/``min`` split the gradient
in half at ties as PyTorch's ``maximum``/``minimum`` do. The reference tests
``all(n == 0)`` over the whole batch; here it is tested per sequence, which agrees
with it whenever every sequence starts from a zero normaliser or none does, and makes
each sequence of a batch (and of a packed batch) behave as if run alone.

The input projection of every step is one GEMM before the loop; the weight gradients
are GEMMs after it; the loop writes into buffers allocated once.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .activations import sigmoid, tanh
from .sequence import (
    HiddenSteps,
    StepStates,
    final_slot,
    length_mask,
    state_slots,
    step_order,
    step_slots,
)

FORGET_GATES = ("sigmoid", "exp")

SLSTMState = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class SLSTMCache(HiddenSteps):
    """What the forward keeps for the backward (and for inspection).

    ``pre (T, B, 4H)`` raw pre-activations ĩ, f̃, z̃, õ (recurrence included);
    ``gates (T, B, 4H)`` exp(ĩ - m'), exp(log f + m - m') before the clip at 1, tanh(z̃),
    sigmoid(õ); ``h_state``, ``c_state``, ``n_state``, ``m_state`` ``(T+1, B, H)`` in
    the slot layout of :mod:`kioku.functional.sequence`; ``mask (T, B)`` or ``None``.
    """

    x: np.ndarray
    weight_ih: np.ndarray
    recurrent_kernel: np.ndarray
    pre: np.ndarray
    gates: np.ndarray
    h_state: np.ndarray
    c_state: np.ndarray
    n_state: np.ndarray
    m_state: np.ndarray
    mask: np.ndarray | None
    reverse: bool
    forget_gate_kind: str

    c_out = StepStates("c_state", "leaving", "``(T, B, H)``: the cell leaving each step.")
    n_out = StepStates("n_state", "leaving", "``(T, B, H)``: the normaliser leaving each step.")
    m_out = StepStates("m_state", "leaving", "``(T, B, H)``: the stabiliser leaving each step.")

    @property
    def input_gate(self) -> np.ndarray:
        """``(T, B, H)``: the stabilised input gate i' of each step."""
        return np.minimum(self.gates[:, :, : self.gates.shape[2] // 4], 1)

    @property
    def forget_gate(self) -> np.ndarray:
        """``(T, B, H)``: the stabilised forget gate f' of each step."""
        H = self.gates.shape[2] // 4
        return np.minimum(self.gates[:, :, H : 2 * H], 1)

    @property
    def output_gate(self) -> np.ndarray:
        """``(T, B, H)``: the output gate o of each step."""
        return self.gates[:, :, 3 * (self.gates.shape[2] // 4) :]


class SLSTMGrads(NamedTuple):
    """Gradients of one direction: ``dx (T, B, I)`` (``None`` if not asked),
    ``dweight_ih (4H, I)``, ``drecurrent_kernel (K, D, 4, D)``, ``dbias (4H,)``, and
    ``dstate0``: ``(dh0, dc0, dn0, dm0)``, each ``(B, H)``."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dstate0: SLSTMState


def _check_forget_gate(forget_gate: str) -> None:
    if forget_gate not in FORGET_GATES:
        raise ValueError(
            f"forget_gate: expected one of {', '.join(FORGET_GATES)}, found {forget_gate!r}"
        )


def _log_forget(raw: np.ndarray, kind: str, out: np.ndarray) -> np.ndarray:
    """log f from the forget pre-activation: logsigmoid (stable for any sign) or identity."""
    if kind == "exp":
        np.copyto(out, raw)
        return out
    np.logaddexp(0, -raw, out=out)
    return np.negative(out, out=out)


def _clip_slope(e: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d min(e, 1) / d log e: e below 1, e / 2 at 1 (PyTorch's tie rule), 0 above (also
    for e = inf, which a first step's clipped forget gate may hold)."""
    np.multiply(e, 0.5, out=out)
    np.copyto(out, 0, where=e > 1)
    np.copyto(out, e, where=e < 1)
    return out


def slstm_forward(
    x: np.ndarray,
    weight_ih: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None = None,
    state: tuple[np.ndarray | None, ...] | None = None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    forget_gate: str = "sigmoid",
    keep_cache: bool = True,
) -> tuple[np.ndarray, SLSTMState, SLSTMCache | None]:
    """Run one sLSTM direction over ``x (T, B, I)``.

    ``state`` is ``(h0, c0, n0, m0)``, each ``(B, H)`` or ``None`` (zeros); ``lengths
    (B,)`` gives each sequence's valid steps (packed-sequence semantics: outputs past
    the length are zero, the final state is the state at the last valid step, and
    ``reverse`` starts at that step). ``forget_gate`` is ``"sigmoid"`` or ``"exp"``.
    Returns ``y (T, B, H)``, the final ``(h_n, c_n, n_n, m_n)`` (each ``(B, H)``) and
    the cache; with ``keep_cache=False`` ``None`` in its place, and only two slots of
    each state (trading roles every step) and one step's gates kept.
    """
    _check_forget_gate(forget_gate)
    T, B, I = x.shape
    K, D = recurrent_kernel.shape[0], recurrent_kernel.shape[1]
    H = K * D
    dtype = x.dtype

    pre = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, 4 * H)
    if bias is not None:
        pre += bias
    states = [state_slots(s, T, (B, H), dtype, reverse, keep_cache) for s in state or (None,) * 4]
    gates = np.empty_like(pre) if keep_cache else np.empty((1, B, 4 * H), dtype)
    mask = length_mask(lengths, T, B)
    y = np.empty((T, B, H), dtype)
    kernel = recurrent_kernel.reshape(K, D, 4 * D)
    recurrent = np.empty((K, B, 4 * D), dtype)
    log_f_m = np.empty((B, H), dtype)
    input_gate, forget_gate_value = np.empty((B, H), dtype), np.empty((B, H), dtype)
    new_info = np.empty((B, H), dtype)

    for step, t in enumerate(step_order(T, reverse)):
        slot_in, slot_out = step_slots(step, t, reverse, keep_cache)
        h_prev, c_prev, n_prev, m_prev = (s[slot_in] for s in states)
        h_next, c_next, n_next, m_next = (s[slot_out] for s in states)
        a = pre[t]
        # (ĩ, f̃, z̃, õ) += h R, head by head, added straight into the (gate, head, unit) layout
        np.matmul(h_prev.reshape(B, K, D).transpose(1, 0, 2), kernel, out=recurrent)
        a_by_head = a.reshape(B, 4, K, D)
        a_by_head += recurrent.reshape(K, B, 4, D).transpose(1, 2, 0, 3)
        i_raw, f_raw, z_raw, o_raw = (a[:, g * H : (g + 1) * H] for g in range(4))
        gate_row = gates[t if keep_cache else 0]
        exp_i, exp_f, z, o = (gate_row[:, g * H : (g + 1) * H] for g in range(4))
        _log_forget(f_raw, forget_gate, log_f_m)  # log f + m
        log_f_m += m_prev
        np.maximum(i_raw, log_f_m, out=m_next)  # m' = max(ĩ, log f + m)
        first = np.all(n_prev == 0, axis=1)  # m' = ĩ at a sequence's first step
        np.copyto(m_next, i_raw, where=first[:, None])
        with np.errstate(over="ignore"):  # only at a first step, where f' is clipped to 1
            np.exp(np.subtract(i_raw, m_next, out=exp_i), out=exp_i)
            np.exp(np.subtract(log_f_m, m_next, out=exp_f), out=exp_f)
        np.minimum(exp_i, 1, out=input_gate)  # i' = min(exp(ĩ - m'), 1)
        np.minimum(exp_f, 1, out=forget_gate_value)  # f' = min(exp(log f + m - m'), 1)
        tanh(z_raw, z)
        sigmoid(o_raw, o)
        np.multiply(forget_gate_value, c_prev, out=c_next)  # c' = f' c + i' z
        np.multiply(input_gate, z, out=new_info)
        c_next += new_info
        np.multiply(forget_gate_value, n_prev, out=n_next)  # n' = f' n + i'
        n_next += input_gate
        np.multiply(o, c_next, out=h_next)  # h' = o c' / n'
        h_next /= n_next
        if mask is None:
            y[t] = h_next
        else:
            finished = ~mask[t, :, None]  # past its length a sequence keeps its state
            for prev, nxt in ((h_prev, h_next), (c_prev, c_next), (n_prev, n_next)):
                np.copyto(nxt, prev, where=finished)
            np.copyto(m_next, m_prev, where=finished)
            np.multiply(h_next, mask[t, :, None], out=y[t])

    final = tuple(s[final_slot(T, reverse, keep_cache)].copy() for s in states)
    if not keep_cache:
        return y, final, None
    cache = SLSTMCache(
        x, weight_ih, recurrent_kernel, pre, gates, *states, mask, reverse, forget_gate
    )
    return y, final, cache


def slstm_backward(
    dy: np.ndarray,
    cache: SLSTMCache,
    dstate: tuple[np.ndarray | None, ...] | None = None,
    need_dx: bool = True,
    traces: tuple[np.ndarray, ...] | None = None,
) -> SLSTMGrads:
    """Backprop through time for one direction.

    ``dy (T, B, H)`` is the gradient of the loss for the outputs; ``dstate`` the
    gradients ``(dh_n, dc_n, dn_n, dm_n)`` for the final state, each ``(B, H)`` or
    ``None`` (zeros). ``traces``, when given, is four ``(T, B, H)`` arrays that receive
    dL/dh_t, dL/dc_t, dL/dn_t and dL/dm_t of every step (the total gradient reaching
    each state leaving step ``t``).
    """
    x, pre, gates, mask = cache.x, cache.pre, cache.gates, cache.mask
    T, B, I = x.shape
    K, D = cache.recurrent_kernel.shape[0], cache.recurrent_kernel.shape[1]
    H = K * D
    dtype = x.dtype
    r = int(cache.reverse)

    dh, dc, dn, dm = (
        np.zeros((B, H), dtype) if d is None else np.array(d, dtype)
        for d in (dstate or (None,) * 4)
    )
    if mask is not None:
        dy = dy * mask[:, :, None]  # outputs past a length are constants
    dpre = np.empty_like(pre)
    kernel_t = cache.recurrent_kernel.reshape(K, D, 4 * D).transpose(0, 2, 1)
    dpre_heads = np.empty((K, B, 4 * D), dtype)
    dh_heads = np.empty((K, B, D), dtype)
    dh_step, dc_step, dn_step, dm_step = (np.empty((B, H), dtype) for _ in range(4))
    dh_rec, dc_rec, dn_rec = (np.empty((B, H), dtype) for _ in range(3))
    input_gate, forget_gate = np.empty((B, H), dtype), np.empty((B, H), dtype)
    d_input, d_forget = np.empty((B, H), dtype), np.empty((B, H), dtype)
    log_f_m, share_i, slope = (np.empty((B, H), dtype) for _ in range(3))
    # a sequence not yet started in reverse may hold n = 0 at masked steps; those rows
    # are discarded below, so their 0/0 is harmless
    quiet = np.errstate(divide="ignore", invalid="ignore") if mask is not None else nullcontext()

    with quiet:
        for t in reversed(step_order(T, cache.reverse)):
            c_prev, n_prev, m_prev = (
                s[t + r] for s in (cache.c_state, cache.n_state, cache.m_state)
            )
            h, c, n = (s[t + 1 - r] for s in (cache.h_state, cache.c_state, cache.n_state))
            i_raw, f_raw = pre[t, :, :H], pre[t, :, H : 2 * H]
            exp_i, exp_f, z, o = (gates[t, :, g * H : (g + 1) * H] for g in range(4))
            d_i_raw, d_f_raw, d_z_raw, d_o_raw = (dpre[t, :, g * H : (g + 1) * H] for g in range(4))
            np.minimum(exp_i, 1, out=input_gate)
            np.minimum(exp_f, 1, out=forget_gate)

            np.add(dh, dy[t], out=dh_step)
            np.multiply(dh_step, c, out=d_o_raw)  # h' = o c' / n'
            d_o_raw /= n
            np.subtract(1, o, out=slope)  # sigmoid' = o (1 - o)
            slope *= o
            d_o_raw *= slope
            np.multiply(dh_step, o, out=slope)
            slope /= n
            np.add(dc, slope, out=dc_step)
            np.multiply(dh_step, h, out=slope)
            slope /= n
            np.subtract(dn, slope, out=dn_step)

            np.multiply(dc_step, forget_gate, out=dc_rec)  # c' = f' c + i' z
            np.multiply(dn_step, forget_gate, out=dn_rec)  # n' = f' n + i'
            np.multiply(dc_step, input_gate, out=d_z_raw)
            np.multiply(z, z, out=slope)  # tanh' = 1 - z^2
            np.subtract(1, slope, out=slope)
            d_z_raw *= slope
            np.multiply(dc_step, z, out=d_input)
            d_input += dn_step
            np.multiply(dc_step, c_prev, out=d_forget)
            np.multiply(dn_step, n_prev, out=slope)
            d_forget += slope

            d_input *= _clip_slope(exp_i, slope)  # i' = min(exp(ĩ - m'), 1)
            d_forget *= _clip_slope(exp_f, slope)  # f' = min(exp(log f + m - m'), 1)
            np.subtract(dm, d_input, out=dm_step)  # m' enters both exponents with a minus
            dm_step -= d_forget
            if traces is not None:
                for trace, step_grad in zip(traces, (dh_step, dc_step, dn_step, dm_step)):
                    trace[t] = step_grad

            _log_forget(f_raw, cache.forget_gate_kind, log_f_m)  # m' = max(ĩ, log f + m)
            log_f_m += m_prev
            np.greater(i_raw, log_f_m, out=share_i, casting="unsafe")
            share_i += 0.5 * (i_raw == log_f_m)  # a tie splits the gradient, as in PyTorch
            share_i[np.all(n_prev == 0, axis=1)] = 1  # m' = ĩ at a sequence's first step
            np.multiply(dm_step, share_i, out=d_i_raw)
            d_i_raw += d_input
            np.subtract(1, share_i, out=share_i)
            share_i *= dm_step
            share_i += d_forget  # share_i now holds d(log f + m)
            if cache.forget_gate_kind == "exp":
                np.copyto(d_f_raw, share_i)
            else:  # logsigmoid' = sigmoid(-f~)
                sigmoid(np.negative(f_raw, out=d_f_raw), d_f_raw)
                d_f_raw *= share_i

            if mask is not None:
                np.copyto(dpre[t], 0, where=~mask[t, :, None])
            # dh = dpre R^T, head by head
            np.copyto(
                dpre_heads.reshape(K, B, 4, D), dpre[t].reshape(B, 4, K, D).transpose(2, 0, 1, 3)
            )
            np.matmul(dpre_heads, kernel_t, out=dh_heads)
            np.copyto(dh_rec.reshape(B, K, D), dh_heads.transpose(1, 0, 2))
            if mask is None:
                dh, dh_rec = dh_rec, dh
                dc, dc_rec = dc_rec, dc
                dn, dn_rec = dn_rec, dn
                np.copyto(dm, share_i)  # m enters log f + m with slope 1
            else:  # a finished sequence passes its gradient through unchanged
                valid = mask[t, :, None]
                for carried, step in ((dh, dh_rec), (dc, dc_rec), (dn, dn_rec), (dm, share_i)):
                    np.copyto(carried, step, where=valid)

    N = T * B
    flat = dpre.reshape(N, 4 * H)
    dx = (flat @ cache.weight_ih).reshape(T, B, I) if need_dx else None
    h_in = cache.h_in.reshape(N, K, D).transpose(1, 2, 0)  # (K, D, N)
    dpre_by_head = dpre.reshape(N, 4, K, D).transpose(2, 0, 1, 3).reshape(K, N, 4 * D)
    drecurrent_kernel = (h_in @ dpre_by_head).reshape(K, D, 4, D)
    return SLSTMGrads(
        dx,
        flat.T @ x.reshape(N, I),
        drecurrent_kernel,
        flat.sum(axis=0),
        (dh, dc, dn, dm),
    )
