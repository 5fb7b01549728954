"""One LSTM direction with the variants other frameworks carry, forward and backward.

Same shapes, weights and packed-sequence semantics as :mod:`kioku.functional.lstm`
(``T`` steps, ``B`` sequences, ``H`` cells, ``P`` hidden size, gates in order i, f, g, o),
plus, each off unless asked for:

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

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .layer_norm import layer_norm, layer_norm_backward
from .lstm import LSTMCache
from .onnx_activations import DEFAULT_ACTIVATIONS, Activation
from .sequence import length_mask, step_order


class LayerNormParams(NamedTuple):
    """Gains and shifts of the three layer norms: ``gamma_ih``, ``beta_ih``,
    ``gamma_hh``, ``beta_hh`` ``(4H,)``; ``gamma_c``, ``beta_c`` ``(H,)``."""

    gamma_ih: np.ndarray
    beta_ih: np.ndarray
    gamma_hh: np.ndarray
    beta_hh: np.ndarray
    gamma_c: np.ndarray
    beta_c: np.ndarray


@dataclass
class VariantCache(LSTMCache):
    """:class:`LSTMCache` plus what the variants need. ``gates`` hold the activated gates
    (f is ``1 - i`` with ``input_forget``); ``preact (T, B, 4H)`` the pre-activations
    before clipping; ``cell (T, B, H)`` the new cell before zoneout; ``cell_act (T, B, H)``
    ``h(.)`` of the (normalised) cell; ``tanh_c`` is ``cell_act``. Layer norm keeps the
    normalised values and inverse deviations of the input projection (``x_norm``,
    ``x_inv_std``), recurrent projection (``rec_norm``, ``rec_inv_std``) and cell
    (``cell_norm``, ``cell_inv_std``). ``h_rec (T, B, P)`` is the dropped-out ``h_{t-1}``."""

    preact: np.ndarray | None = None
    cell: np.ndarray | None = None
    weight_peephole: np.ndarray | None = None
    input_forget: bool = False
    clip: float | None = None
    activations: tuple[Activation, Activation, Activation] = DEFAULT_ACTIVATIONS
    layer_norm: LayerNormParams | None = None
    x_norm: np.ndarray | None = None
    x_inv_std: np.ndarray | None = None
    rec_norm: np.ndarray | None = None
    rec_inv_std: np.ndarray | None = None
    cell_norm: np.ndarray | None = None
    cell_inv_std: np.ndarray | None = None
    zoneout_h: np.ndarray | None = None
    zoneout_c: np.ndarray | None = None
    recurrent_mask: np.ndarray | None = None
    h_rec: np.ndarray | None = None


class VariantGrads(NamedTuple):
    """:class:`~kioku.functional.lstm.LSTMGrads`' fields plus ``dweight_peephole (3H,)``
    (or ``None``) and ``dlayer_norm`` (a :class:`LayerNormParams` of gradients, or ``None``)."""

    dx: np.ndarray | None
    dweight_ih: np.ndarray
    dweight_hh: np.ndarray
    dbias: np.ndarray
    dweight_hr: np.ndarray | None
    dh0: np.ndarray
    dc0: np.ndarray
    dweight_peephole: np.ndarray | None
    dlayer_norm: LayerNormParams | None


def _zoneout(z: float | np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray | None:
    if z is None or (np.ndim(z) == 0 and float(z) == 0.0):
        return None
    return np.broadcast_to(np.asarray(z, dtype), shape)


def _clip_activate(act: Activation, pre: np.ndarray, clip, out: np.ndarray) -> None:
    if clip is None:
        act(pre, out)
    else:
        act(np.clip(pre, -clip, clip, out=out), out)


def lstm_variant_forward(
    x: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    weight_hr: np.ndarray | None = None,
    *,
    weight_peephole: np.ndarray | None = None,
    input_forget: bool = False,
    clip: float | None = None,
    activations: tuple[Activation, Activation, Activation] | None = None,
    layer_norm_params: LayerNormParams | None = None,
    zoneout_h: float | np.ndarray | None = None,
    zoneout_c: float | np.ndarray | None = None,
    recurrent_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, VariantCache]:
    """Run one LSTM direction with variants over ``x (T, B, I)``.

    Arguments as :func:`~kioku.functional.lstm.lstm_forward`, and: ``weight_peephole
    (3H,)``; ``input_forget``; ``clip`` (a positive float); ``activations`` ``(f, g, h)``;
    ``layer_norm_params``; ``zoneout_h`` a float or ``(T, B, P)`` array, ``zoneout_c``
    a float or ``(T, B, H)`` array; ``recurrent_mask (B, P)``. Returns ``y (T, B, P)``,
    ``h_n (B, P)``, ``c_n (B, H)`` and the cache.
    """
    T, B, I = x.shape
    H = weight_ih.shape[0] // 4
    P = weight_hr.shape[0] if weight_hr is not None else H
    dtype, r = x.dtype, int(reverse)
    act_f, act_g, act_h = activations or DEFAULT_ACTIVATIONS
    ln = layer_norm_params
    zh, zc = _zoneout(zoneout_h, (T, B, P), dtype), _zoneout(zoneout_c, (T, B, H), dtype)

    preact = (x.reshape(T * B, I) @ weight_ih.T).reshape(T, B, 4 * H)
    x_norm = x_inv_std = rec_norm = rec_inv_std = cell_norm = cell_inv_std = None
    if ln is not None:
        x_norm = np.empty_like(preact)
        x_inv_std = layer_norm(preact, ln.gamma_ih, ln.beta_ih, preact, x_norm)
        rec_norm = np.empty_like(preact)
        rec_inv_std = np.empty((T, B, 1), dtype)
        cell_norm = np.empty((T, B, H), dtype)
        cell_inv_std = np.empty((T, B, 1), dtype)
    if bias is not None:
        preact += bias
    gates = np.empty_like(preact)
    h_state = np.empty((T + 1, B, P), dtype)
    c_state = np.empty((T + 1, B, H), dtype)
    h_state[T * r] = 0 if h0 is None else h0
    c_state[T * r] = 0 if c0 is None else c0
    cell = np.empty((T, B, H), dtype)
    cell_act = np.empty((T, B, H), dtype)
    hidden = np.empty((T, B, H), dtype) if weight_hr is not None else None
    h_rec = np.empty((T, B, P), dtype) if recurrent_mask is not None else None
    mask = length_mask(lengths, T, B)
    y = np.empty((T, B, P), dtype)
    recurrent = np.empty((B, 4 * H), dtype)
    peep = np.empty((B, H), dtype)
    h_new = np.empty((B, P), dtype)
    w_hh_t = weight_hh.T
    if weight_peephole is not None:
        p_i, p_f, p_o = weight_peephole[:H], weight_peephole[H : 2 * H], weight_peephole[2 * H :]

    for t in step_order(T, reverse):
        h_prev, c_prev = h_state[t + r], c_state[t + r]
        h_next, c_next = h_state[t + 1 - r], c_state[t + 1 - r]
        a, gate = preact[t], gates[t]
        h_in = h_prev if h_rec is None else np.multiply(h_prev, recurrent_mask, out=h_rec[t])
        np.matmul(h_in, w_hh_t, out=recurrent)
        if ln is not None:
            rec_inv_std[t] = layer_norm(recurrent, ln.gamma_hh, ln.beta_hh, recurrent, rec_norm[t])
        a += recurrent
        if weight_peephole is not None:  # i and f look at the cell they are about to change
            a[:, :H] += np.multiply(c_prev, p_i, out=peep)
            a[:, H : 2 * H] += np.multiply(c_prev, p_f, out=peep)
        input_gate, forget_gate = gate[:, :H], gate[:, H : 2 * H]
        candidate, output_gate = gate[:, 2 * H : 3 * H], gate[:, 3 * H :]
        _clip_activate(act_f, a[:, :H], clip, input_gate)
        if input_forget:
            np.subtract(1, input_gate, out=forget_gate)
        else:
            _clip_activate(act_f, a[:, H : 2 * H], clip, forget_gate)
        _clip_activate(act_g, a[:, 2 * H : 3 * H], clip, candidate)
        np.multiply(forget_gate, c_prev, out=cell[t])  # c' = f * c + i * g
        cell[t] += np.multiply(input_gate, candidate, out=peep)
        if weight_peephole is not None:  # o looks at the new cell
            a[:, 3 * H :] += np.multiply(cell[t], p_o, out=peep)
        _clip_activate(act_f, a[:, 3 * H :], clip, output_gate)
        shown = cell[t]
        if ln is not None:
            cell_inv_std[t] = layer_norm(cell[t], ln.gamma_c, ln.beta_c, peep, cell_norm[t])
            shown = peep
        act_h(shown, cell_act[t])
        unprojected = h_new if hidden is None else hidden[t]
        np.multiply(output_gate, cell_act[t], out=unprojected)  # h' = o * h(c')
        if weight_hr is not None:
            np.matmul(unprojected, weight_hr.T, out=h_new)
        if zh is None:
            h_next[...] = h_new
        else:  # h_t = z h_{t-1} + (1 - z) h': exactly h_{t-1} where z is 1
            np.multiply(h_prev, zh[t], out=h_next)
            h_new *= 1 - zh[t]
            h_next += h_new
        if zc is None:
            c_next[...] = cell[t]
        else:
            np.multiply(c_prev, zc[t], out=c_next)
            c_next += np.multiply(cell[t], 1 - zc[t], out=peep)
        if mask is None:
            y[t] = h_next
        else:
            finished = ~mask[t, :, None]  # past its length a sequence keeps its state
            np.copyto(c_next, c_prev, where=finished)
            np.copyto(h_next, h_prev, where=finished)
            np.multiply(h_next, mask[t, :, None], out=y[t])

    cache = VariantCache(
        x, weight_ih, weight_hh, weight_hr, gates, h_state, c_state, cell_act, hidden, mask,
        reverse, preact, cell, weight_peephole, bool(input_forget), clip,
        (act_f, act_g, act_h), ln, x_norm, x_inv_std, rec_norm, rec_inv_std, cell_norm,
        cell_inv_std, zh, zc, recurrent_mask, h_rec,
    )  # fmt: skip
    final = T * (1 - r)
    return y, h_state[final].copy(), c_state[final].copy(), cache


def _gate_backward(act: Activation, pre, clip, value, d_gate, slope) -> None:
    """``d_gate *= d act(clip(pre)) / d pre`` in place (zero where ``pre`` was clipped)."""
    clipped = pre if clip is None else np.clip(pre, -clip, clip)
    d_gate *= act.grad(clipped, value, slope)
    if clip is not None:
        d_gate *= np.abs(pre) <= clip


def lstm_variant_backward(
    dy: np.ndarray,
    cache: VariantCache,
    dh_n: np.ndarray | None = None,
    dc_n: np.ndarray | None = None,
    need_dx: bool = True,
    dh_trace: np.ndarray | None = None,
    dc_trace: np.ndarray | None = None,
) -> VariantGrads:
    """Backprop through time for :func:`lstm_variant_forward`; arguments and the
    ``dh_trace``/``dc_trace`` contract as :func:`~kioku.functional.lstm.lstm_backward`
    (``dh_trace`` receives dL/dh_t of the state leaving step ``t``; ``dc_trace`` dL/dc' of
    the new cell before zoneout, which is dL/dc_t without zoneout)."""
    x, gates, mask, c = cache.x, cache.gates, cache.mask, cache
    T, B, I = x.shape
    H = gates.shape[2] // 4
    P = c.h_state.shape[2]
    r, dtype = int(c.reverse), x.dtype
    act_f, act_g, act_h = c.activations
    ln, peephole = c.layer_norm, c.weight_peephole

    dgates = np.empty_like(gates)
    drec = np.empty_like(gates) if ln is not None else dgates
    dcell_norm = np.empty((T, B, H), dtype) if ln is not None else None
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
    dh_out = np.empty((T, B, P), dtype) if c.hidden is not None else None
    if mask is not None:
        dy = dy * mask[:, :, None]
    dh_step = np.empty((B, P), dtype)
    dh_new = np.empty((B, P), dtype)
    dcell = np.empty((B, H), dtype)
    dh_rec = np.empty((B, P), dtype)
    dc_rec = np.empty((B, H), dtype)
    slope = np.empty((B, H), dtype)
    d_shown = np.empty((B, H), dtype)
    d_hidden = np.empty((B, H), dtype) if dh_out is not None else dh_new

    for t in reversed(step_order(T, c.reverse)):
        c_prev = c.c_state[t + r]
        a = c.preact[t]
        input_gate, forget_gate = gates[t, :, :H], gates[t, :, H : 2 * H]
        candidate, output_gate = gates[t, :, 2 * H : 3 * H], gates[t, :, 3 * H :]
        d_input, d_forget = dgates[t, :, :H], dgates[t, :, H : 2 * H]
        d_candidate, d_output = dgates[t, :, 2 * H : 3 * H], dgates[t, :, 3 * H :]

        np.add(dh, dy[t], out=dh_step)
        if dh_trace is not None:
            dh_trace[t] = dh_step
        # zoneout: h_t = z h_{t-1} + (1 - z) h', c_t = z c_{t-1} + (1 - z) c'
        if c.zoneout_h is None:
            dh_new[...] = dh_step
        else:
            np.multiply(dh_step, 1 - c.zoneout_h[t], out=dh_new)
        if c.zoneout_c is None:
            dcell[...] = dc
        else:
            np.multiply(dc, 1 - c.zoneout_c[t], out=dcell)
        if dh_out is not None:  # h' = W_hr (o * h(c'))
            dh_out[t] = dh_new
            np.matmul(dh_new, c.weight_hr, out=d_hidden)
        np.multiply(d_hidden, c.tanh_c[t], out=d_output)  # h' = o * h(c')
        shown = c.cell[t] if ln is None else c.cell_norm[t] * ln.gamma_c + ln.beta_c
        np.multiply(d_hidden, output_gate, out=d_shown)
        d_shown *= act_h.grad(shown, c.tanh_c[t], slope)
        if ln is not None:
            dcell_norm[t] = d_shown  # the cell norm's backward runs after the loop per step
            d_shown = layer_norm_backward(
                d_shown[None], c.cell_norm[t][None], c.cell_inv_std[t][None], ln.gamma_c
            )[0][0]
        dcell += d_shown
        _gate_backward(act_f, a[:, 3 * H :], c.clip, output_gate, d_output, slope)
        if peephole is not None:
            dcell += d_output * peephole[2 * H :]
        if dc_trace is not None:
            dc_trace[t] = dcell
        np.multiply(dcell, c_prev, out=d_forget)  # c' = f * c + i * g
        np.multiply(dcell, candidate, out=d_input)
        np.multiply(dcell, input_gate, out=d_candidate)
        np.multiply(dcell, forget_gate, out=dc_rec)
        if c.input_forget:  # f = 1 - i
            d_input -= d_forget
            d_forget[...] = 0
        else:
            _gate_backward(act_f, a[:, H : 2 * H], c.clip, forget_gate, d_forget, slope)
        _gate_backward(act_f, a[:, :H], c.clip, input_gate, d_input, slope)
        _gate_backward(act_g, a[:, 2 * H : 3 * H], c.clip, candidate, d_candidate, slope)
        if peephole is not None:
            dc_rec += d_input * peephole[:H]
            dc_rec += d_forget * peephole[H : 2 * H]
        if c.zoneout_c is not None:
            dc_rec += dc * c.zoneout_c[t]
        if mask is not None:
            dgates[t] *= mask[t, :, None]
            if dh_out is not None:
                dh_out[t] *= mask[t, :, None]
        if ln is not None:
            drec[t] = layer_norm_backward(
                dgates[t][None], c.rec_norm[t][None], c.rec_inv_std[t][None], ln.gamma_hh
            )[0][0]
        np.matmul(drec[t], c.weight_hh, out=dh_rec)
        if c.recurrent_mask is not None:
            dh_rec *= c.recurrent_mask
        if c.zoneout_h is not None:
            dh_rec += dh_step * c.zoneout_h[t]
        if mask is None:
            dh, dh_rec = dh_rec, dh
            dc, dc_rec = dc_rec, dc
        else:  # a finished sequence passes its gradient through unchanged
            np.copyto(dh, dh_rec, where=mask[t, :, None])
            np.copyto(dc, dc_rec, where=mask[t, :, None])

    flat = dgates.reshape(T * B, 4 * H)
    dbias = flat.sum(axis=0)
    dlayer_norm = None
    dproj = dgates
    if ln is not None:
        dproj, dgamma_ih, dbeta_ih = layer_norm_backward(dgates, c.x_norm, c.x_inv_std, ln.gamma_ih)
        dgamma_hh = (dgates * c.rec_norm).sum(axis=(0, 1))
        dbeta_hh = dbias
        valid = dcell_norm if mask is None else dcell_norm * mask[:, :, None]
        dgamma_c = (valid * c.cell_norm).sum(axis=(0, 1))
        dbeta_c = valid.sum(axis=(0, 1))
        dlayer_norm = LayerNormParams(dgamma_ih, dbeta_ih, dgamma_hh, dbeta_hh, dgamma_c, dbeta_c)
    dproj_flat = dproj.reshape(T * B, 4 * H)
    dx = (dproj_flat @ c.weight_ih).reshape(T, B, I) if need_dx else None
    dweight_ih = dproj_flat.T @ x.reshape(T * B, I)
    h_in = c.h_in if c.h_rec is None else c.h_rec
    dweight_hh = drec.reshape(T * B, 4 * H).T @ h_in.reshape(T * B, P)
    dweight_hr = None
    if dh_out is not None:
        dweight_hr = dh_out.reshape(T * B, P).T @ c.hidden.reshape(T * B, H)
    dweight_peephole = None
    if peephole is not None:
        dweight_peephole = np.concatenate(
            [
                (dgates[:, :, :H] * c.c_in).sum(axis=(0, 1)),
                (dgates[:, :, H : 2 * H] * c.c_in).sum(axis=(0, 1)),
                (dgates[:, :, 3 * H :] * c.cell).sum(axis=(0, 1)),
            ]
        )
    return VariantGrads(
        dx, dweight_ih, dweight_hh, dbias, dweight_hr, dh, dc, dweight_peephole, dlayer_norm
    )
