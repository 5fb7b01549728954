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

:func:`lstm_step` is that step and :func:`lstm_step_backward` its derivative, line by
line; :func:`lstm_forward` and :func:`lstm_backward` run them over the sequence. The input
projection of every step is one GEMM before the loop; the weight gradients are GEMMs after
it; the loop itself writes into buffers allocated once. Variants (peepholes, layer norm,
zoneout, ...) are :class:`~kioku.functional.lstm_hooks.LSTMHooks` of the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .lstm_hooks import CANDIDATE, CELL, GATE, PLAIN, LSTMHooks, split_gates
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


def lstm_step(cache: LSTMCache, t: int, hooks: LSTMHooks, work: ForwardBuffers) -> None:
    """Step ``t``: reads the state entering it and ``cache.pre_activations[t] (B, 4H)``
    (``x W_ih^T + b``), writes the gates, ``tanh_c[t]`` and the state leaving it."""
    r = int(cache.reverse)
    h_prev, c_prev = cache.h_state[t + r], cache.c_state[t + r]
    h_next, c_next = cache.h_state[t + 1 - r], cache.c_state[t + 1 - r]
    preact = cache.pre_activations[t]
    gate = split_gates(cache.gates[t])
    recurrent = np.matmul(hooks.drop_recurrent(t, h_prev), cache.weight_hh.T, out=work.recurrent)
    hooks.normalize_recurrent(t, recurrent)
    preact += recurrent  # x W_x* + h W_h* + b, all four gates at once
    pre = split_gates(preact)
    hooks.peek_previous(pre, c_prev)
    input_gate = hooks.activate(GATE, pre.input_gate, gate.input_gate)  # i = σ(x W_xi + ...)
    forget_gate = hooks.forget(input_gate, pre.forget_gate, gate.forget_gate)  # f = σ(...)
    candidate = hooks.activate(CANDIDATE, pre.candidate, gate.candidate)  # g = tanh(...)
    cell = np.multiply(forget_gate, c_prev, out=hooks.cell_out(t, c_next))  # c = f*c + i*g
    cell += np.multiply(input_gate, candidate, out=work.new_info)
    hooks.peek_new(pre.output_gate, cell)
    output_gate = hooks.activate(GATE, pre.output_gate, gate.output_gate)  # o = σ(...)
    tanh_c = hooks.activate(CELL, hooks.normalize_cell(t, cell), cache.tanh_c[t])
    h_new = hooks.hidden_out(h_next)
    unprojected = h_new if cache.hidden is None else cache.hidden[t]
    np.multiply(output_gate, tanh_c, out=unprojected)  # h = o * tanh(c)
    if cache.weight_hr is not None:
        np.matmul(unprojected, cache.weight_hr.T, out=h_new)  # h = (o * tanh(c)) W_hr^T
    hooks.zoneout(t, h_prev, c_prev, h_new, cell, h_next, c_next)


def lstm_step_backward(
    cache: LSTMCache,
    t: int,
    hooks: LSTMHooks,
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
    c_prev = cache.c_state[t + r]
    pre, gate = split_gates(cache.pre_activations[t]), split_gates(cache.gates[t])
    d = split_gates(dgates)
    tanh_c = cache.tanh_c[t]
    if work.dh_trace is not None:
        work.dh_trace[t] = dh
    dh_new, dc_new = hooks.zoneout_backward(t, dh, dc)
    d_hidden = dh_new
    if cache.weight_hr is not None:  # h = (o * tanh(c)) W_hr^T
        work.dh_out[t] = dh_new
        d_hidden = np.matmul(dh_new, cache.weight_hr, out=work.d_hidden)
    np.multiply(d_hidden, tanh_c, out=d.output_gate)  # h = o * tanh(c), for o ...
    d_shown = np.multiply(d_hidden, gate.output_gate, out=work.d_shown)  # ... and for tanh(c)
    # dc reaches c_t by two paths: through tanh(c_t) into h_t (tanh' = 1 - tanh^2) ...
    hooks.activation_backward(CELL, hooks.shown_cell(t, cache), tanh_c, d_shown, work.slope)
    dcell = hooks.normalize_cell_backward(t, d_shown)
    dcell += dc_new  # ... and through c_{t+1} = f_{t+1} * c_t + i_{t+1} * g_{t+1}
    slope = work.slope  # each activation's derivative, in turn
    hooks.activation_backward(GATE, pre.output_gate, gate.output_gate, d.output_gate, slope)  # o
    hooks.peek_new_backward(dcell, d.output_gate)
    if work.dc_trace is not None:
        work.dc_trace[t] = dcell
    np.multiply(dcell, c_prev, out=d.forget_gate)  # c = f * c + i * g, for f
    np.multiply(dcell, gate.candidate, out=d.input_gate)  # ... for i
    np.multiply(dcell, gate.input_gate, out=d.candidate)  # ... for g
    dc_prev = np.multiply(dcell, gate.forget_gate, out=work.dc_prev)  # ... for c_{t-1}
    hooks.forget_backward(pre.forget_gate, gate.forget_gate, d.forget_gate, d.input_gate, slope)
    hooks.activation_backward(CANDIDATE, pre.candidate, gate.candidate, d.candidate, slope)  # g
    hooks.activation_backward(GATE, pre.input_gate, gate.input_gate, d.input_gate, slope)  # i
    hooks.peek_previous_backward(dc_prev, d.input_gate, d.forget_gate)
    if valid is not None:  # outputs past a length are constants
        dgates *= valid
        if work.dh_out is not None:
            work.dh_out[t] *= valid
    drec = hooks.normalize_recurrent_backward(t, dgates)
    dh_prev = np.matmul(drec, cache.weight_hh, out=work.dh_prev)  # + h W_h*
    hooks.drop_recurrent_backward(dh_prev)
    hooks.zoneout_carry_backward(t, dh, dc, dh_prev, dc_prev)
    return dh_prev, dc_prev


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

    for t in step_order(T, reverse):
        lstm_step(cache, t, run, work)
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
        lstm_step(step, 0, PLAIN, work)
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
        dh_prev, dc_prev = lstm_step_backward(cache, t, hooks, dh_step, dc, dgates[t], valid, work)
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
