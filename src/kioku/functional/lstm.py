"""One LSTM direction over a whole sequence: the seed's six equations and their backward.

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` cells, ``P`` the size
of the hidden state (``P = H`` without projection, ``proj_size`` with it). Weights follow
``torch.nn.LSTM``: ``weight_ih (4H, I)``, ``weight_hh (4H, P)``, ``weight_hr (P, H)``, rows
in gate order input, forget, candidate, output. ``bias`` is ``bias_ih + bias_hh``.

Forward, for one step::

    f_t = σ(x_t W_xf + h_{t-1} W_hf + b_f)     forget gate
    i_t = σ(x_t W_xi + h_{t-1} W_hi + b_i)     input gate
    g_t = tanh(x_t W_xg + h_{t-1} W_hg + b_g)  candidate cell
    o_t = σ(x_t W_xo + h_{t-1} W_ho + b_o)     output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t            memory cell
    h_t = o_t ⊙ tanh(c_t)                      (then h_t W_hr^T with a projection)

:func:`lstm_step` is that step and nothing else, :func:`lstm_step_backward` its derivative,
line by line; :func:`lstm_forward` and :func:`lstm_backward` run them over the sequence. The
input projection of every step is one GEMM before the loop; the weight gradients are GEMMs
after it; the loop itself writes into buffers allocated once. Variants (peepholes, layer
norm, zoneout, ...) run the hooked step of :meth:`~kioku.functional.lstm_hooks.LSTMHooks.step`
instead (``lstm_forward(..., hooks=...)``; see :mod:`kioku.functional.lstm_variants`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .lstm_hooks import PLAIN, LSTMHooks, split_gates
from .sequence import HiddenSteps, StepStates, length_mask, step_order


@dataclass
class LSTMCache(HiddenSteps):
    """What the forward keeps for the backward (and for inspection).

    ``gates (T, B, 4H)`` activated i, f, g, o; ``h_state (T+1, B, P)`` and
    ``c_state (T+1, B, H)`` in the slot layout of :mod:`kioku.functional.sequence`;
    ``tanh_c (T, B, H)`` tanh of the cell leaving each step; ``hidden (T, B, H)`` the
    unprojected ``o * tanh(c)`` (projection only, else ``None``); ``mask (T, B)`` or
    ``None``. At masked steps gates and tanh_c hold values that were not used.
    ``preact (T, B, 4H)`` the pre-activations when the hooks keep them (else ``None``);
    ``hooks`` the variant's :class:`~kioku.functional.lstm_hooks.LSTMHooks` of this run
    (``None``: the plain LSTM).
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
    preact: np.ndarray | None = None
    hooks: LSTMHooks | None = None

    @property
    def step_hooks(self) -> LSTMHooks:
        """The hooks the steps ran with (:data:`~kioku.functional.lstm_hooks.PLAIN` if none)."""
        return PLAIN if self.hooks is None else self.hooks

    @property
    def pre_activations(self) -> np.ndarray:
        """``(T, B, 4H)``: what the step activates the gates from. The plain step activates
        in place, so there this is ``gates`` itself (its derivatives need only the
        activated values); hooks with ``keeps_preact`` keep the two apart."""
        return self.gates if self.preact is None else self.preact

    c_in = StepStates("c_state", "entering", "``(T, B, H)``: the cell entering each step.")
    c_out = StepStates("c_state", "leaving", "``(T, B, H)``: the cell leaving each step.")


class LSTMGrads(NamedTuple):
    """Gradients of one direction: ``dx (T, B, I)`` (``None`` if not asked),
    ``dweight_ih (4H, I)``, ``dweight_hh (4H, P)``, ``dbias (4H,)``,
    ``dweight_hr (P, H)`` or ``None``, ``dh0 (B, P)``, ``dc0 (B, H)``; a variant's own
    parameters: ``dweight_peephole (3H,)`` and ``dlayer_norm`` (a
    :class:`~kioku.functional.lstm_variants.LayerNormParams`), else ``None``."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    dweight_hh: np.ndarray
    dbias: np.ndarray
    dweight_hr: np.ndarray | None
    dh0: np.ndarray
    dc0: np.ndarray
    dweight_peephole: np.ndarray | None = None
    dlayer_norm: tuple | None = None


@dataclass
class ForwardBuffers:
    """Scratch of the forward step, allocated once per run: ``recurrent (B, 4H)``,
    ``new_info (B, H)``."""

    recurrent: np.ndarray
    new_info: np.ndarray


@dataclass
class BackwardBuffers:
    """Scratch of the backward step, allocated once per run: ``d_hidden``, ``d_shown``,
    ``slope (B, H)``; ``dh_prev (B, P)`` and ``dc_prev (B, H)`` receive the gradients for the
    state entering the step; ``dh_out (T, B, P)`` keeps dL/dh' for the projection's weight
    (``None`` without one); ``dh_trace (T, B, P)``, ``dc_trace (T, B, H)`` or ``None``."""

    d_hidden: np.ndarray
    d_shown: np.ndarray
    slope: np.ndarray
    dh_prev: np.ndarray
    dc_prev: np.ndarray
    dh_out: np.ndarray | None
    dh_trace: np.ndarray | None
    dc_trace: np.ndarray | None


def lstm_step(cache: LSTMCache, t: int, work: ForwardBuffers) -> None:
    """Step ``t`` of the seed's LSTM: reads the state entering it, ``h_{t-1} (B, P)`` and
    ``c_{t-1} (B, H)``, and ``cache.gates[t] (B, 4H)`` holding ``x_t W_ih^T + b``; writes the
    activated gates there, ``tanh_c[t] (B, H)`` and the state leaving it, ``h_t``, ``c_t``."""
    r = int(cache.reverse)
    h_prev, c_prev = cache.h_state[t + r], cache.c_state[t + r]
    h_next, c_next = cache.h_state[t + 1 - r], cache.c_state[t + 1 - r]
    a = cache.gates[t]
    a += np.matmul(h_prev, cache.weight_hh.T, out=work.recurrent)  # x_t W_x* + h_{t-1} W_h* + b
    i, f, g, o = split_gates(a)  # (B, H) views, activated in place
    sigmoid(f, out=f)  # f_t = σ(x_t W_xf + h_{t-1} W_hf + b_f)     forget gate
    sigmoid(i, out=i)  # i_t = σ(x_t W_xi + h_{t-1} W_hi + b_i)     input gate
    np.tanh(g, out=g)  # g_t = tanh(x_t W_xg + h_{t-1} W_hg + b_g)  candidate
    sigmoid(o, out=o)  # o_t = σ(x_t W_xo + h_{t-1} W_ho + b_o)     output gate
    np.multiply(f, c_prev, out=c_next)  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    c_next += np.multiply(i, g, out=work.new_info)
    hidden = h_next if cache.hidden is None else cache.hidden[t]
    np.multiply(o, np.tanh(c_next, out=cache.tanh_c[t]), out=hidden)  # h_t = o_t ⊙ tanh(c_t)
    if cache.weight_hr is not None:  # with a projection, h_t = (o_t ⊙ tanh(c_t)) W_hr^T
        np.matmul(hidden, cache.weight_hr.T, out=h_next)


def lstm_step_backward(
    cache: LSTMCache,
    t: int,
    dh: np.ndarray,
    dc: np.ndarray,
    dgates: np.ndarray,
    valid: np.ndarray | None,
    work: BackwardBuffers,
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative of :func:`lstm_step`, each line beside the one it differentiates.

    ``dh (B, P)`` = dL/dh_t (the output's gradient included), ``dc (B, H)`` = dL/dc_t
    from the steps after ``t``; ``valid (B, 1)`` or ``None``. Writes dL/d(pre-activations)
    into ``dgates (B, 4H)`` and returns dL/dh_{t-1}, dL/dc_{t-1} (``work``'s buffers).
    """
    r = int(cache.reverse)
    c_prev, tanh_c, slope = cache.c_state[t + r], cache.tanh_c[t], work.slope
    i, f, g, o = split_gates(cache.gates[t])
    di, df, dg, do = split_gates(dgates)
    if work.dh_trace is not None:
        work.dh_trace[t] = dh
    if cache.weight_hr is not None:  # h_t = (o_t ⊙ tanh(c_t)) W_hr^T
        work.dh_out[t] = dh
        dh = np.matmul(dh, cache.weight_hr, out=work.d_hidden)
    np.multiply(dh, tanh_c, out=do)  # h_t = o_t ⊙ tanh(c_t), for o_t ...
    dcell = np.multiply(dh, o, out=work.d_shown)  # ... and for c_t, through tanh' = 1 - tanh²
    dcell *= _tanh_slope(tanh_c, slope)
    dcell += dc  # c_t also reaches c_{t+1} = f_{t+1} ⊙ c_t + i_{t+1} ⊙ g_{t+1}
    do *= _sigmoid_slope(o, slope)  # o_t = σ(...), σ' = σ (1 - σ)
    if work.dc_trace is not None:
        work.dc_trace[t] = dcell
    np.multiply(dcell, c_prev, out=df)  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, for f_t
    np.multiply(dcell, g, out=di)  # ... for i_t
    np.multiply(dcell, i, out=dg)  # ... for g_t
    dc_prev = np.multiply(dcell, f, out=work.dc_prev)  # ... for c_{t-1}
    df *= _sigmoid_slope(f, slope)  # f_t = σ(...)
    dg *= _tanh_slope(g, slope)  # g_t = tanh(...)
    di *= _sigmoid_slope(i, slope)  # i_t = σ(...)
    if valid is not None:  # outputs past a length are constants
        dgates *= valid
        if work.dh_out is not None:
            work.dh_out[t] *= valid
    dh_prev = np.matmul(dgates, cache.weight_hh, out=work.dh_prev)  # + h_{t-1} W_h*
    return dh_prev, dc_prev


def _sigmoid_slope(s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """σ'(x) = s (1 - s) from ``s = σ(x)`` (any shape), written into ``out``."""
    np.subtract(1, s, out=out)
    out *= s
    return out


def _tanh_slope(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - y² from ``y = tanh(x)`` (any shape), written into ``out``."""
    np.multiply(y, y, out=out)
    return np.subtract(1, out, out=out)


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
    keep_cache: bool = True,
    *,
    hooks: LSTMHooks | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LSTMCache | None]:
    """Run one LSTM direction over ``x (T, B, I)``.

    ``h0 (B, P)`` and ``c0 (B, H)`` default to zeros; ``lengths (B,)`` gives each
    sequence's valid steps (packed-sequence semantics: outputs past the length are
    zero, the final state is the state at the last valid step, and ``reverse`` starts
    at that step). ``hooks`` turns the step into a variant (see
    :mod:`kioku.functional.lstm_variants`). Returns ``y (T, B, P)``, ``h_n (B, P)``,
    ``c_n (B, H)`` and the cache. With ``keep_cache=False`` the cache is ``None`` and
    the plain step keeps only the current state (two slots, no per-step gates, cells
    or hidden states beyond ``y``); a variant's step runs as usual and its cache is
    dropped on return.
    """
    T, B, I = x.shape
    H = weight_ih.shape[0] // 4
    P = weight_hr.shape[0] if weight_hr is not None else H
    dtype = x.dtype
    r = int(reverse)
    run = (hooks or PLAIN).start(T, B, H, P, dtype)

    preact = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, 4 * H)
    run.normalize_input(preact)
    if bias is not None:
        preact += bias
    mask = length_mask(lengths, T, B)
    if not keep_cache and hooks is None:
        return _infer(x, weight_ih, weight_hh, weight_hr, preact, h0, c0, mask, reverse)
    h_state = np.empty((T + 1, B, P), dtype)
    c_state = np.empty((T + 1, B, H), dtype)
    h_state[T * r] = 0 if h0 is None else h0
    c_state[T * r] = 0 if c0 is None else c0
    cache = LSTMCache(
        x, weight_ih, weight_hh, weight_hr,
        gates=np.empty_like(preact) if run.keeps_preact else preact,
        h_state=h_state,
        c_state=c_state,
        tanh_c=np.empty((T, B, H), dtype),
        hidden=np.empty((T, B, H), dtype) if weight_hr is not None else None,
        mask=mask,
        reverse=reverse,
        preact=preact if run.keeps_preact else None,
        hooks=None if hooks is None else run,
    )  # fmt: skip
    work = ForwardBuffers(np.empty((B, 4 * H), dtype), np.empty((B, H), dtype))
    mask = cache.mask
    y = np.empty((T, B, P), dtype)

    step = lstm_step if hooks is None else run.step  # a variant's step calls its hooks
    for t in step_order(T, reverse):
        step(cache, t, work)
        h_next = h_state[t + 1 - r]
        if mask is None:
            y[t] = h_next
        else:
            finished = ~mask[t, :, None]  # past its length a sequence keeps its state
            np.copyto(c_state[t + 1 - r], c_state[t + r], where=finished)
            np.copyto(h_next, h_state[t + r], where=finished)
            np.multiply(h_next, mask[t, :, None], out=y[t])

    final = T * (1 - r)
    return y, h_state[final].copy(), c_state[final].copy(), cache if keep_cache else None


def _infer(x, weight_ih, weight_hh, weight_hr, preact, h0, c0, mask, reverse):
    """:func:`lstm_forward` without a cache: the same :func:`lstm_step` on two state
    slots that trade roles every step (a step read as forward reads slot 0 and writes
    slot 1, read as reverse the other way), so nothing grows with ``T`` but ``y``."""
    T, B, _ = preact.shape
    H = preact.shape[2] // 4
    P = weight_hh.shape[1]
    dtype = preact.dtype
    h_slots, c_slots = np.empty((2, B, P), dtype), np.empty((2, B, H), dtype)
    h_slots[0] = 0 if h0 is None else h0
    c_slots[0] = 0 if c0 is None else c0
    tanh_c = np.empty((1, B, H), dtype)
    hidden = np.empty((1, B, H), dtype) if weight_hr is not None else None
    work = ForwardBuffers(np.empty((B, 4 * H), dtype), np.empty((B, H), dtype))
    y = np.empty((T, B, P), dtype)
    for s, t in enumerate(step_order(T, reverse)):
        flip = s % 2
        step = LSTMCache(
            x, weight_ih, weight_hh, weight_hr, preact[t : t + 1], h_slots, c_slots, tanh_c,
            hidden, None, bool(flip),
        )  # fmt: skip
        lstm_step(step, 0, work)
        h_next, c_next = h_slots[1 - flip], c_slots[1 - flip]
        if mask is None:
            y[t] = h_next
        else:
            finished = ~mask[t, :, None]  # past its length a sequence keeps its state
            np.copyto(c_next, c_slots[flip], where=finished)
            np.copyto(h_next, h_slots[flip], where=finished)
            np.multiply(h_next, mask[t, :, None], out=y[t])
    final = T % 2
    return y, h_slots[final].copy(), c_slots[final].copy(), None


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
    (the total gradient reaching the state leaving step ``t``; with zoneout, dL/dc of
    the new cell before it is mixed with the previous one).
    """
    x, mask, hooks = cache.x, cache.mask, cache.step_hooks
    T, B, I = x.shape
    H = cache.gates.shape[2] // 4
    P = cache.h_state.shape[2]
    dtype = x.dtype
    hooks.start_backward()
    step_backward = lstm_step_backward if cache.hooks is None else hooks.step_backward

    dgates = np.empty_like(cache.gates)
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
    if mask is not None:
        dy = dy * mask[:, :, None]  # outputs past a length are constants
    projected = cache.hidden is not None
    work = BackwardBuffers(
        d_hidden=np.empty((B, H), dtype),
        d_shown=np.empty((B, H), dtype),
        slope=np.empty((B, H), dtype),
        dh_prev=np.empty((B, P), dtype),
        dc_prev=np.empty((B, H), dtype),
        dh_out=np.empty((T, B, P), dtype) if projected else None,
        dh_trace=dh_trace,
        dc_trace=dc_trace,
    )
    dh_step = np.empty((B, P), dtype)

    for t in reversed(step_order(T, cache.reverse)):
        valid = None if mask is None else mask[t, :, None]
        np.add(dh, dy[t], out=dh_step)
        dh_prev, dc_prev = step_backward(cache, t, dh_step, dc, dgates[t], valid, work)
        if mask is None:  # the buffers trade places instead of copying
            dh, work.dh_prev = dh_prev, dh
            dc, work.dc_prev = dc_prev, dc
        else:  # a finished sequence passes its gradient through unchanged
            np.copyto(dh, dh_prev, where=valid)
            np.copyto(dc, dc_prev, where=valid)

    dbias = dgates.reshape(T * B, 4 * H).sum(axis=0)
    dproj = hooks.normalize_input_backward(dgates).reshape(T * B, 4 * H)
    dx = (dproj @ cache.weight_ih).reshape(T, B, I) if need_dx else None
    dweight_ih = dproj.T @ x.reshape(T * B, I)
    drec, h_in = hooks.recurrent_terms(dgates, cache.h_in)
    dweight_hh = drec.reshape(T * B, 4 * H).T @ h_in.reshape(T * B, P)
    dweight_hr = None
    if projected:
        dweight_hr = work.dh_out.reshape(T * B, P).T @ cache.hidden.reshape(T * B, H)
    extra = hooks.parameter_grads(dgates, dbias, cache)
    return LSTMGrads(dx, dweight_ih, dweight_hh, dbias, dweight_hr, dh, dc, **extra)
