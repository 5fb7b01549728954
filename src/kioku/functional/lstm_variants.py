"""The LSTM variants other frameworks carry, as hooks of the one step of
:mod:`kioku.functional.lstm` (``lstm_forward(..., hooks=VariantHooks(...))``).

Same shapes, weights and packed-sequence semantics as the plain LSTM (``T`` steps, ``B``
sequences, ``H`` cells, ``P`` hidden size, gates in order i, f, g, o), plus, each off
unless asked for:

- peepholes (ONNX): ``weight_peephole (3H,) = [p_i, p_f, p_o]``; i and f read
  ``c_{t-1}``, o reads the new cell ``c_t``;
- the coupled input-forget gate (ONNX ``input_forget``): ``f = 1 - i``;
- pre-activation clipping (ONNX ``clip``): each gate's pre-activation is clipped to
  ``[-clip, clip]`` (its gradient is zero where it was clipped);
- activations (ONNX ``f``, ``g``, ``h``): ``i, f, o = f(.)``, ``g = g(.)``,
  ``h' = o * h(c')``; see :mod:`kioku.functional.onnx_activations`;
- layer normalisation (Ba et al. 2016, as haste's LayerNormLSTM)::

      a  = LN(x W_ih^T; gamma_ih, beta_ih) + LN(h W_hh^T; gamma_hh, beta_hh) + b
      h' = o * h(LN(c'; gamma_c, beta_c))      (the carried cell c' stays unnormalised)

- zoneout (Krueger et al. 2017): ``c_t = z_c c_{t-1} + (1 - z_c) c'``,
  ``h_t = z_h h_{t-1} + (1 - z_h) h'``, where ``z`` is a 0/1 keep-previous mask in
  training and the probability itself in evaluation (the expectation); ``h'`` reads
  the un-zoned ``c'``;
- variational recurrent dropout (Gal and Ghahramani 2016): ``recurrent_mask (B, P)``,
  one mask per sequence (already scaled by ``1 / (1 - p)``), multiplies ``h_{t-1}``
  before the recurrent GEMM at every step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .layer_norm import layer_norm, layer_norm_backward
from .lstm_hooks import CELL, GATE, LSTMHooks, split_gates
from .onnx_activations import DEFAULT_ACTIVATIONS, Activation


class LayerNormParams(NamedTuple):
    """Gains and shifts of the three layer norms: ``gamma_ih``, ``beta_ih``,
    ``gamma_hh``, ``beta_hh`` ``(4H,)``; ``gamma_c``, ``beta_c`` ``(H,)``."""

    gamma_ih: np.ndarray
    beta_ih: np.ndarray
    gamma_hh: np.ndarray
    beta_hh: np.ndarray
    gamma_c: np.ndarray
    beta_c: np.ndarray


def _zoneout(z: float | np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray | None:
    if z is None or (np.ndim(z) == 0 and float(z) == 0.0):
        return None
    return np.broadcast_to(np.asarray(z, dtype), shape)


def _layer_norm_step_backward(d, normalized, inv_std, gamma) -> np.ndarray:
    """:func:`layer_norm_backward` of one step's ``(B, N)`` rows: dL/d(input) only."""
    return layer_norm_backward(d[None], normalized[None], inv_std[None], gamma)[0][0]


@dataclass
class VariantHooks(LSTMHooks):
    """The variants' settings and parameters; :meth:`start` copies them into the hooks of
    one run, which also hold what that run's backward needs.

    ``weight_peephole (3H,)``; ``input_forget``; ``clip`` (a positive float);
    ``activations`` ``(f, g, h)``; ``layer_norm``; ``zoneout_h`` a float or ``(T, B, P)``
    array, ``zoneout_c`` a float or ``(T, B, H)`` array; ``recurrent_mask (B, P)``.
    Per run: ``cell (T, B, H)`` the new cell before zoneout, ``shown (T, B, H)`` what
    the cell activation read, ``h_rec (T, B, P)`` the dropped-out ``h_{t-1}``, and the
    normalised values and inverse deviations of the three layer norms.
    """

    weight_peephole: np.ndarray | None = None
    input_forget: bool = False
    clip: float | None = None
    activations: tuple[Activation, Activation, Activation] = DEFAULT_ACTIVATIONS
    layer_norm: LayerNormParams | None = None
    zoneout_h: float | np.ndarray | None = None
    zoneout_c: float | np.ndarray | None = None
    recurrent_mask: np.ndarray | None = None

    keeps_preact = True

    def start(self, steps, batch, hidden, proj, dtype) -> VariantHooks:
        run = copy.copy(self)
        run.activations = tuple(self.activations or DEFAULT_ACTIVATIONS)
        run.zoneout_h = _zoneout(self.zoneout_h, (steps, batch, proj), dtype)
        run.zoneout_c = _zoneout(self.zoneout_c, (steps, batch, hidden), dtype)
        run.cell = np.empty((steps, batch, hidden), dtype)
        run.shown = run.cell
        run.h_new = np.empty((batch, proj), dtype)
        run.h_rec = None
        if self.recurrent_mask is not None:
            run.h_rec = np.empty((steps, batch, proj), dtype)
        if self.layer_norm is not None:
            run.shown = np.empty((steps, batch, hidden), dtype)
            run.x_norm = np.empty((steps, batch, 4 * hidden), dtype)
            run.rec_norm = np.empty((steps, batch, 4 * hidden), dtype)
            run.rec_inv_std = np.empty((steps, batch, 1), dtype)
            run.cell_norm = np.empty((steps, batch, hidden), dtype)
            run.cell_inv_std = np.empty((steps, batch, 1), dtype)
        return run

    def start_backward(self) -> None:
        if self.layer_norm is not None:
            self.drec = np.empty_like(self.rec_norm)
            self.dcell_norm = np.empty_like(self.cell_norm)
        self.dh_new = np.empty_like(self.h_new)
        self.dc_new = np.empty_like(self.cell[0])

    # -- layer norm ----------------------------------------------------------------
    def normalize_input(self, preact):
        if self.layer_norm is not None:
            ln = self.layer_norm
            self.x_inv_std = layer_norm(preact, ln.gamma_ih, ln.beta_ih, preact, self.x_norm)

    def normalize_recurrent(self, t, recurrent):
        if self.layer_norm is not None:
            ln = self.layer_norm
            self.rec_inv_std[t] = layer_norm(
                recurrent, ln.gamma_hh, ln.beta_hh, recurrent, self.rec_norm[t]
            )

    def normalize_cell(self, t, cell):
        if self.layer_norm is None:
            return cell
        ln = self.layer_norm
        self.cell_inv_std[t] = layer_norm(
            cell, ln.gamma_c, ln.beta_c, self.shown[t], self.cell_norm[t]
        )
        return self.shown[t]

    def shown_cell(self, t, cache):
        return self.shown[t]

    def normalize_cell_backward(self, t, d_shown):
        if self.layer_norm is None:
            return d_shown
        self.dcell_norm[t] = d_shown  # gamma_c's and beta_c's gradients sum these after the loop
        return _layer_norm_step_backward(
            d_shown, self.cell_norm[t], self.cell_inv_std[t], self.layer_norm.gamma_c
        )

    def normalize_recurrent_backward(self, t, dgates):
        if self.layer_norm is None:
            return dgates
        self.drec[t] = _layer_norm_step_backward(
            dgates, self.rec_norm[t], self.rec_inv_std[t], self.layer_norm.gamma_hh
        )
        return self.drec[t]

    def normalize_input_backward(self, dgates):
        if self.layer_norm is None:
            return dgates
        dproj, self.dgamma_ih, self.dbeta_ih = layer_norm_backward(
            dgates, self.x_norm, self.x_inv_std, self.layer_norm.gamma_ih
        )
        return dproj

    # -- recurrent dropout ---------------------------------------------------------
    def drop_recurrent(self, t, h_prev):
        if self.recurrent_mask is None:
            return h_prev
        return np.multiply(h_prev, self.recurrent_mask, out=self.h_rec[t])

    def drop_recurrent_backward(self, dh_prev):
        if self.recurrent_mask is not None:
            dh_prev *= self.recurrent_mask

    def recurrent_terms(self, dgates, h_in):
        drec = dgates if self.layer_norm is None else self.drec
        return drec, (h_in if self.h_rec is None else self.h_rec)

    # -- peepholes -----------------------------------------------------------------
    def peek_previous(self, pre, c_prev):
        if self.weight_peephole is not None:  # i and f look at the cell they are about to change
            p_i, p_f, _ = self._peepholes()
            np.add(pre.input_gate, c_prev * p_i, out=pre.input_gate)
            np.add(pre.forget_gate, c_prev * p_f, out=pre.forget_gate)

    def peek_new(self, pre_output, cell):
        if self.weight_peephole is not None:  # o looks at the new cell
            pre_output += cell * self._peepholes()[2]

    def peek_new_backward(self, dcell, d_output):
        if self.weight_peephole is not None:
            dcell += d_output * self._peepholes()[2]

    def peek_previous_backward(self, dc_prev, d_input, d_forget):
        if self.weight_peephole is not None:
            p_i, p_f, _ = self._peepholes()
            dc_prev += d_input * p_i
            dc_prev += d_forget * p_f

    def _peepholes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``p_i``, ``p_f``, ``p_o``, each ``(H,)``."""
        H = self.weight_peephole.shape[0] // 3
        w = self.weight_peephole
        return w[:H], w[H : 2 * H], w[2 * H :]

    # -- clipping and ONNX activations ---------------------------------------------
    def activate(self, which, pre, out):
        if self.clip is not None and which != CELL:
            pre = np.clip(pre, -self.clip, self.clip, out=out)
        return self.activations[which](pre, out)

    def activation_backward(self, which, pre, value, d_gate, slope):
        clipped = self.clip is not None and which != CELL
        x = np.clip(pre, -self.clip, self.clip) if clipped else pre
        d_gate *= self.activations[which].grad(x, value, slope)
        if clipped:
            d_gate *= np.abs(pre) <= self.clip

    # -- coupled input-forget gate -------------------------------------------------
    def forget(self, input_gate, pre, out):
        if self.input_forget:
            return np.subtract(1, input_gate, out=out)
        return self.activate(GATE, pre, out)

    def forget_backward(self, pre, forget_gate, d_forget, d_input, slope):
        if self.input_forget:  # f = 1 - i
            d_input -= d_forget
            d_forget[...] = 0
        else:
            self.activation_backward(GATE, pre, forget_gate, d_forget, slope)

    # -- zoneout -------------------------------------------------------------------
    def cell_out(self, t, c_next):
        return self.cell[t]

    def hidden_out(self, h_next):
        return self.h_new

    def zoneout(self, t, h_prev, c_prev, h_new, cell, h_next, c_next):
        z_h, z_c = self.zoneout_h, self.zoneout_c
        if z_h is None:
            h_next[...] = h_new
        else:  # h_t = z h_{t-1} + (1 - z) h': exactly h_{t-1} where z is 1
            np.multiply(h_prev, z_h[t], out=h_next)
            h_new *= 1 - z_h[t]
            h_next += h_new
        if z_c is None:
            c_next[...] = cell
        else:
            np.multiply(c_prev, z_c[t], out=c_next)
            c_next += cell * (1 - z_c[t])

    def zoneout_backward(self, t, dh, dc):
        z_h, z_c = self.zoneout_h, self.zoneout_c
        dh_new = dh if z_h is None else np.multiply(dh, 1 - z_h[t], out=self.dh_new)
        dc_new = dc if z_c is None else np.multiply(dc, 1 - z_c[t], out=self.dc_new)
        return dh_new, dc_new

    def zoneout_carry_backward(self, t, dh, dc, dh_prev, dc_prev):
        if self.zoneout_h is not None:
            dh_prev += dh * self.zoneout_h[t]
        if self.zoneout_c is not None:
            dc_prev += dc * self.zoneout_c[t]

    # -- the variants' own parameters ----------------------------------------------
    def parameter_grads(self, dgates, dbias, cache):
        grads = {}
        mask = cache.mask
        if self.weight_peephole is not None:
            d = split_gates(dgates)
            grads["dweight_peephole"] = np.concatenate(
                [
                    (d.input_gate * cache.c_in).sum(axis=(0, 1)),
                    (d.forget_gate * cache.c_in).sum(axis=(0, 1)),
                    (d.output_gate * self.cell).sum(axis=(0, 1)),
                ]
            )
        if self.layer_norm is not None:
            valid = self.dcell_norm if mask is None else self.dcell_norm * mask[:, :, None]
            grads["dlayer_norm"] = LayerNormParams(
                self.dgamma_ih,
                self.dbeta_ih,
                (dgates * self.rec_norm).sum(axis=(0, 1)),
                dbias,  # beta_hh is added where the bias is
                (valid * self.cell_norm).sum(axis=(0, 1)),
                valid.sum(axis=(0, 1)),
            )
        return grads
