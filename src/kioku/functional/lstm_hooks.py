"""The LSTM step with the points where a variant may change it, each with the seed's LSTM
as default.

:meth:`LSTMHooks.step` is :func:`kioku.functional.lstm.lstm_step` with a hook call at each
place a variant (see :mod:`kioku.functional.lstm_variants`) changes it, and
:meth:`LSTMHooks.step_backward` calls each ``*_backward`` at the mirrored place;
:class:`LSTMHooks` leaves every hook as the plain LSTM, so a variant overrides only the hooks
it changes. ``lstm_forward(..., hooks=...)`` runs this step; without hooks it runs the plain
one, whose outputs and gradients these defaults reproduce bit for bit.

Shapes: ``B`` sequences, ``H`` cells, ``P`` hidden size; ``pre`` and ``gates`` are
:class:`Gates` of ``(B, H)`` views; ``t`` is the time index of the step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .onnx_activations import DEFAULT_ACTIVATIONS, Activation

GATE, CANDIDATE, CELL = 0, 1, 2  # which of the (f, g, h) activations: ONNX's names


class Gates(NamedTuple):
    """The four gate blocks of a ``(..., 4H)`` array, in PyTorch's order i, f, g, o."""

    input_gate: np.ndarray
    forget_gate: np.ndarray
    candidate: np.ndarray
    output_gate: np.ndarray


def split_gates(array: np.ndarray) -> Gates:
    """Views of the four ``(..., H)`` blocks of ``array (..., 4H)``."""
    H = array.shape[-1] // 4
    return Gates(
        array[..., :H], array[..., H : 2 * H], array[..., 2 * H : 3 * H], array[..., 3 * H :]
    )


class LSTMHooks:
    """The seed's LSTM: every hook does what the six equations say and nothing more.

    ``keeps_preact``: whether the step must keep the pre-activations apart from the
    activated gates (a variant whose derivative needs them); the plain step activates
    in place.
    """

    activations: tuple[Activation, Activation, Activation] = DEFAULT_ACTIVATIONS
    keeps_preact = False

    def start(self, steps: int, batch: int, hidden: int, proj: int, dtype) -> LSTMHooks:
        """The hooks for one forward run (a variant allocates its per-run arrays here)."""
        return self

    def start_backward(self) -> None:
        """Allocate what one backward run keeps between steps."""

    def step(self, cache, t: int, work) -> None:
        """Step ``t`` of :func:`~kioku.functional.lstm.lstm_step` (same arguments, less
        ``hooks``) with this object's hooks: reads ``cache.pre_activations[t] (B, 4H)``
        and the state entering the step, writes the gates, ``tanh_c[t]`` and the state
        leaving it."""
        r = int(cache.reverse)
        h_prev, c_prev = cache.h_state[t + r], cache.c_state[t + r]
        h_next, c_next = cache.h_state[t + 1 - r], cache.c_state[t + 1 - r]
        preact = cache.pre_activations[t]
        gate = split_gates(cache.gates[t])
        h_read = self.drop_recurrent(t, h_prev)
        recurrent = np.matmul(h_read, cache.weight_hh.T, out=work.recurrent)
        self.normalize_recurrent(t, recurrent)
        preact += recurrent  # x W_x* + h W_h* + b, all four gates at once
        pre = split_gates(preact)
        self.peek_previous(pre, c_prev)
        input_gate = self.activate(GATE, pre.input_gate, gate.input_gate)
        forget_gate = self.forget(input_gate, pre.forget_gate, gate.forget_gate)
        candidate = self.activate(CANDIDATE, pre.candidate, gate.candidate)
        cell = np.multiply(forget_gate, c_prev, out=self.cell_out(t, c_next))
        cell += np.multiply(input_gate, candidate, out=work.new_info)
        self.peek_new(pre.output_gate, cell)
        output_gate = self.activate(GATE, pre.output_gate, gate.output_gate)
        tanh_c = self.activate(CELL, self.normalize_cell(t, cell), cache.tanh_c[t])
        h_new = self.hidden_out(h_next)
        unprojected = h_new if cache.hidden is None else cache.hidden[t]
        np.multiply(output_gate, tanh_c, out=unprojected)
        if cache.weight_hr is not None:
            np.matmul(unprojected, cache.weight_hr.T, out=h_new)
        self.zoneout(t, h_prev, c_prev, h_new, cell, h_next, c_next)

    def step_backward(self, cache, t, dh, dc, dgates, valid, work):
        """The derivative of :meth:`step`, with the arguments and results of
        :func:`~kioku.functional.lstm.lstm_step_backward`: ``dh (B, P)``, ``dc (B, H)``,
        ``dgates (B, 4H)`` written, ``valid (B, 1)`` or ``None``; returns dL/dh_{t-1},
        dL/dc_{t-1}."""
        r = int(cache.reverse)
        c_prev = cache.c_state[t + r]
        pre, gate = split_gates(cache.pre_activations[t]), split_gates(cache.gates[t])
        d = split_gates(dgates)
        tanh_c = cache.tanh_c[t]
        if work.dh_trace is not None:
            work.dh_trace[t] = dh
        dh_new, dc_new = self.zoneout_backward(t, dh, dc)
        d_hidden = dh_new
        if cache.weight_hr is not None:
            work.dh_out[t] = dh_new
            d_hidden = np.matmul(dh_new, cache.weight_hr, out=work.d_hidden)
        np.multiply(d_hidden, tanh_c, out=d.output_gate)
        d_shown = np.multiply(d_hidden, gate.output_gate, out=work.d_shown)
        self.activation_backward(CELL, self.shown_cell(t, cache), tanh_c, d_shown, work.slope)
        dcell = self.normalize_cell_backward(t, d_shown)
        dcell += dc_new
        slope = work.slope
        self.activation_backward(GATE, pre.output_gate, gate.output_gate, d.output_gate, slope)
        self.peek_new_backward(dcell, d.output_gate)
        if work.dc_trace is not None:
            work.dc_trace[t] = dcell
        np.multiply(dcell, c_prev, out=d.forget_gate)
        np.multiply(dcell, gate.candidate, out=d.input_gate)
        np.multiply(dcell, gate.input_gate, out=d.candidate)
        dc_prev = np.multiply(dcell, gate.forget_gate, out=work.dc_prev)
        self.forget_backward(pre.forget_gate, gate.forget_gate, d.forget_gate, d.input_gate, slope)
        self.activation_backward(CANDIDATE, pre.candidate, gate.candidate, d.candidate, slope)
        self.activation_backward(GATE, pre.input_gate, gate.input_gate, d.input_gate, slope)
        self.peek_previous_backward(dc_prev, d.input_gate, d.forget_gate)
        if valid is not None:
            dgates *= valid
            if work.dh_out is not None:
                work.dh_out[t] *= valid
        drec = self.normalize_recurrent_backward(t, dgates)
        dh_prev = np.matmul(drec, cache.weight_hh, out=work.dh_prev)
        self.drop_recurrent_backward(dh_prev)
        self.zoneout_carry_backward(t, dh, dc, dh_prev, dc_prev)
        return dh_prev, dc_prev

    # -- forward, in step order ----------------------------------------------------
    def normalize_input(self, preact: np.ndarray) -> None:
        """``preact (T, B, 4H)``: ``x W_ih^T`` of every step, before the bias, in place."""

    def drop_recurrent(self, t: int, h_prev: np.ndarray) -> np.ndarray:
        """``h_prev (B, P)`` -> the hidden state the recurrent GEMM reads."""
        return h_prev

    def normalize_recurrent(self, t: int, recurrent: np.ndarray) -> None:
        """``recurrent (B, 4H)``: ``h W_hh^T`` of step ``t``, in place."""

    def peek_previous(self, pre: Gates, c_prev: np.ndarray) -> None:
        """Let the gates see ``c_prev (B, H)`` before they open (in place on ``pre``)."""

    def activate(self, which: int, pre: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = act(pre)`` with ``act`` the GATE, CANDIDATE or CELL function."""
        return self.activations[which](pre, out)

    def forget(self, input_gate: np.ndarray, pre: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The forget gate from its pre-activation (the coupled variant: from the input
        gate, ``f = 1 - i``)."""
        return self.activate(GATE, pre, out)

    def cell_out(self, t: int, c_next: np.ndarray) -> np.ndarray:
        """Where the new cell ``c'`` is written (by default straight into the state)."""
        return c_next

    def peek_new(self, pre_output: np.ndarray, cell: np.ndarray) -> None:
        """Let the output gate see the new cell (in place on ``pre_output (B, H)``)."""

    def normalize_cell(self, t: int, cell: np.ndarray) -> np.ndarray:
        """The cell as the output gate shows it: ``h' = o * h(normalize_cell(c'))``."""
        return cell

    def hidden_out(self, h_next: np.ndarray) -> np.ndarray:
        """Where the new hidden state ``h'`` is written (by default into the state)."""
        return h_next

    def zoneout(self, t, h_prev, c_prev, h_new, cell, h_next, c_next) -> None:
        """Mix the new state ``(h_new, cell)`` with the previous one into the state slots."""

    # -- backward, in backward step order ------------------------------------------
    def zoneout_backward(self, t: int, dh: np.ndarray, dc: np.ndarray):
        """dL/dh_t, dL/dc_t -> dL/dh', dL/dc' (the un-zoned new state)."""
        return dh, dc

    def activation_backward(self, which, pre, value, d_gate, slope) -> None:
        """``d_gate *= act'(pre)`` in place; ``value = act(pre)``; ``slope`` scratch."""
        d_gate *= self.activations[which].grad(pre, value, slope)

    def shown_cell(self, t: int, cache) -> np.ndarray:
        """What the cell activation read at step ``t`` (its derivative may need it)."""
        return cache.c_out[t]

    def normalize_cell_backward(self, t: int, d_shown: np.ndarray) -> np.ndarray:
        """dL/d normalize_cell(c') -> dL/dc' along that path."""
        return d_shown

    def peek_new_backward(self, dcell: np.ndarray, d_output: np.ndarray) -> None:
        """Add the output gate's path to ``dcell`` (in place)."""

    def forget_backward(self, pre, forget_gate, d_forget, d_input, slope) -> None:
        """``d_forget`` through the forget gate's activation (or onto ``d_input``)."""
        self.activation_backward(GATE, pre, forget_gate, d_forget, slope)

    def peek_previous_backward(self, dc_prev, d_input, d_forget) -> None:
        """Add the input and forget gates' paths to dL/dc_prev (in place)."""

    def normalize_recurrent_backward(self, t: int, dgates: np.ndarray) -> np.ndarray:
        """dL/d(pre-activations) of step ``t`` -> dL/d(h W_hh^T)."""
        return dgates

    def drop_recurrent_backward(self, dh_prev: np.ndarray) -> None:
        """dL/d(dropped h_prev) -> dL/dh_prev, in place."""

    def zoneout_carry_backward(self, t, dh, dc, dh_prev, dc_prev) -> None:
        """Add the path of the kept previous state to dL/dh_prev, dL/dc_prev (in place)."""

    # -- after the backward loop ---------------------------------------------------
    def normalize_input_backward(self, dgates: np.ndarray) -> np.ndarray:
        """``dgates (T, B, 4H)`` -> dL/d(x W_ih^T)."""
        return dgates

    def recurrent_terms(self, dgates: np.ndarray, h_in: np.ndarray):
        """The two factors of dL/dW_hh: dL/d(h W_hh^T) ``(T, B, 4H)`` and the ``h`` it read."""
        return dgates, h_in

    def parameter_grads(self, dgates: np.ndarray, dbias: np.ndarray, cache) -> dict:
        """Gradients of the variant's own parameters, by :class:`LSTMGrads` field name."""
        return {}


PLAIN = LSTMHooks()
