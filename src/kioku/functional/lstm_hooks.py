"""The points where a variant may change one LSTM step, each with the seed's LSTM as default.

:func:`kioku.functional.lstm.lstm_step` calls these hooks in step order, and
:func:`~kioku.functional.lstm.lstm_step_backward` calls each ``*_backward`` at the mirrored
place; :class:`LSTMHooks` leaves every one as the plain LSTM, so a variant (see
:mod:`kioku.functional.lstm_variants`) overrides only the hooks it changes.

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
        """The forget gate from its pre-activation (or from the input gate)."""
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
