"""The compiled time loops of one LSTM direction (forward and backward).

Each step is one GEMM of the recurrent weights into the step's slice of the precomputed
input projection (``beta = 1``), then one fused pass over the batch that applies the
gates, updates the cell and writes everything the backward needs. Buffers are
allocated by the caller, once per call; the loops allocate nothing. Shapes and slot
layout as in :mod:`kioku.functional.lstm` (``state[t + r]`` enters step ``t``,
``state[t + 1 - r]`` leaves it, ``r = reverse``). ``lengths (B,)`` is all ``T`` when
there is no mask. ``error_model="numpy"`` drops Python's division-by-zero check, which
otherwise keeps LLVM from vectorising the gate pass. The GEMMs before and after the
loops (the input projection, the weight gradients) are in :mod:`._loop_gemms`.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from ._packed import MR, NR
from ._primitives import (
    FAST_MATH,
    all_zero,
    emit_step,
    gate_views,
    infer_cell_row,
    step_gemm,
    train_cell_row,
)
from ._tiles import packed_product, pair_step


@njit(cache=True, nogil=True)
def recurrent_gemm(a, b_nt, b_nn, panels, c, beta, tiled, packed, tile):
    """``c (M, N) = a (M, K) @ B + beta * c`` for one step: with ``packed`` (float32) the
    register-blocked kernel of :mod:`._packed` on ``panels``, on the tile measured for
    the machine (:func:`~kioku.kernels._tiles.packed_product`; ``B`` packed once per call;
    ``tile (MR, NR)`` its scratch), otherwise :func:`step_gemm` on ``b_nt``/``b_nn``."""
    if packed:
        packed_product(a, panels, c, beta, tile)
    else:
        step_gemm(a, b_nt, b_nn, c, beta, tiled)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_forward_loop(
    gates, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, h_state, c_state, tanh_c, hidden,
    y, lengths, reverse, project, b0, b1, tiled, packed, x, panels_ih, step_bias, fused,
):  # fmt: skip
    """Run the recurrence in place. ``weight_hh (4H, P)``, ``weight_hr (P, H)`` and their
    C-contiguous transposes ``weight_hh_t``/``weight_hr_t`` (either layout may be a
    dummy where :func:`step_gemm` does not read it; ``tiled`` as there). With ``packed``
    (float32) the recurrent product reads only ``panels``, ``weight_hh.T`` packed by
    :func:`kioku.kernels._packed.pack_panels`, and ``weight_hh``/``weight_hh_t`` may
    both be dummies. With ``fused`` (float32 only, ``I >= 1``) each step also computes its
    own input projection: ``x[t] (B, I) @ weight_ih.T`` and the recurrent product are one
    :func:`~kioku.kernels._tiles.pair_step` into ``gates[t]``, ``panels_ih`` and
    ``panels`` then ``weight_ih`` and ``weight_hh`` packed in gate order
    (:func:`~kioku.kernels._gate_order.pack_gate_panels`); otherwise ``x`` and
    ``panels_ih`` are not read. ``step_bias (4H,)``, the bias, is added in the gate pass.
    ``gates (T, B, 4H)`` holds ``x W_ih^T`` on entry (scratch with ``fused``) and the
    activated i, f, g, o on exit; ``h_state (T+1, B, P)``/``c_state (T+1, B, H)`` hold
    the initial state in slot ``T * reverse``; fills ``tanh_c (T, B, H)``,
    ``hidden (T, B, H)`` (when ``project``) and ``y (T, B, P)``. Only rows ``b0:b1`` of
    the batch are touched, so threads can share the arrays."""
    T, _, G = gates.shape
    H = G // 4
    r = 1 if reverse else 0
    tile = np.empty((MR, NR), y.dtype)  # per thread: the packed kernel's partial panel
    sb = step_bias
    for s in range(T):
        t = T - 1 - s if reverse else s
        h_prev, c_prev = h_state[t + r], c_state[t + r]
        h_next, c_next = h_state[t + 1 - r], c_state[t + 1 - r]
        a = gates[t]
        if fused:  # both products in one pass, from the weights packed in gate order
            pair_step(x[t], panels_ih, h_prev, panels, a, b0, b1, tile, 0, panels.shape[0])
        else:
            recurrent_gemm(
                h_prev[b0:b1], weight_hh, weight_hh_t, panels, a[b0:b1], 1.0, tiled, packed, tile
            )
        unprojected = hidden[t] if project else h_next
        tc_t = tanh_c[t]
        for b in range(b0, b1):
            train_cell_row(a[b], sb, c_prev[b], c_next[b], tc_t[b], unprojected[b], H, H)
        if project:
            step_gemm(unprojected[b0:b1], weight_hr, weight_hr_t, h_next[b0:b1], 0.0, False)
        emit_step(y[t], h_next, h_prev, lengths, t, b0, b1)
        for b in range(b0, b1):
            if t >= lengths[b]:  # past its length a sequence keeps its cell too
                for j in range(H):
                    c_next[b, j] = c_prev[b, j]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_infer_loop(
    gates, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, h_a, h_b, c, unprojected, y,
    lengths, reverse, project, direct, b0, b1, tiled, packed, x, panels_ih, step_bias, fused,
):  # fmt: skip
    """The recurrence for inference: keeps only the state the next step needs.

    ``gates (T, B, 4H)`` holds ``x W_ih^T`` on entry (overwritten in place as
    scratch); with ``fused`` it may be ``(1, B, 4H)``, one step's scratch reused by
    every step. ``h_a (B, P)`` holds the initial hidden state on entry and the final
    one on exit; ``h_b (B, P)`` is scratch; ``c (B, H)`` holds the initial cell and is
    updated in place to the final one; ``unprojected (B, H)`` is scratch for
    ``o * tanh(c)`` (unused without projection). Fills ``y (T, B, P)``. With ``direct``
    (no projection, every sequence ``T`` long) each step's hidden state is written
    straight into ``y[t]`` and read back from there, no copy; otherwise ``h_a``/``h_b``
    alternate. Rows past their length keep their state. Weights, ``packed``, ``x``,
    ``step_bias`` and ``fused`` as in :func:`lstm_forward_loop`, except that with
    ``fused`` each step's two products are one :func:`~kioku.kernels._tiles.pair_step`:
    ``panels`` and ``panels_ih`` are then ``weight_hh`` and ``weight_ih`` packed in gate
    order (:func:`kioku.kernels._gate_order.pack_gate_panels`) and ``x`` has ``I >= 1``. Where the
    state's rows ``b0:b1`` enter the first step all zero (no initial state given), that
    step's recurrent product, zeros for finite weights, is skipped (with ``fused``: one
    term of it summed, the kernel's least). Only rows ``b0:b1``."""
    T = y.shape[0]
    G = gates.shape[2]
    H = G // 4
    per_step = gates.shape[0] == T
    tile = np.empty((MR, NR), y.dtype)  # per thread: the packed kernel's partial panel
    sb = step_bias
    h_prev = h_a
    in_a = True
    zero_start = all_zero(h_a, b0, b1)
    for s in range(T):
        t = T - 1 - s if reverse else s
        if direct:
            h_next = y[t]
        elif in_a:
            h_next = h_b
        else:
            h_next = h_a
        a = gates[t if per_step else 0]
        skip = s == 0 and zero_start  # a zero state's product: zeros, for finite weights
        if fused:  # both products in one pass, from the weights packed in gate order
            width = 1 if skip else h_prev.shape[1]
            pair_step(
                x[t], panels_ih, h_prev[:, :width], panels, a, b0, b1, tile, 0, panels.shape[0]
            )
        elif not skip:
            recurrent_gemm(
                h_prev[b0:b1], weight_hh, weight_hh_t, panels, a[b0:b1], 1.0, tiled, packed, tile
            )
        target = unprojected if project else h_next
        for b in range(b0, b1):
            if t >= lengths[b]:
                continue
            infer_cell_row(a[b], sb, c[b], target[b], H, H)
        if project:
            step_gemm(unprojected[b0:b1], weight_hr, weight_hr_t, h_next[b0:b1], 0.0, False)
        if not direct:
            emit_step(y[t], h_next, h_prev, lengths, t, b0, b1)
        h_prev = h_next
        in_a = not in_a
    if direct or not in_a:  # the final state is elsewhere: bring it to h_a
        h_a[b0:b1] = h_prev[b0:b1]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_backward_loop(
    dy, gates, c_state, tanh_c, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, dgates, dh,
    dc, dh_out, dh_step, d_hidden, dh_rec, lengths, reverse, project, b0, b1, tiled, packed,
):  # fmt: skip
    """Backprop through time in place. Reads ``dy (T, B, P)``, the forward's ``gates``,
    ``c_state``, ``tanh_c``; writes ``dgates (T, B, 4H)`` (zero at masked steps) and
    ``dh_out (T, B, P)`` (the gradient reaching each projected output, when
    ``project``). ``dh (B, P)``/``dc (B, H)`` hold the final state's gradient on entry
    and the initial state's on exit. ``dh_step``, ``d_hidden``, ``dh_rec`` are scratch
    (``d_hidden`` may be ``dh_step`` without projection). Weights and their transposes
    as in :func:`lstm_forward_loop`, except that ``panels`` packs ``weight_hh`` itself
    (``dh = dgates @ weight_hh``). Only rows ``b0:b1``."""
    T, _, G = dgates.shape
    H = G // 4
    P = dh.shape[1]
    r = 1 if reverse else 0
    one = dy.dtype.type(1)
    zero = dy.dtype.type(0)
    tile = np.empty((MR, NR), dy.dtype)  # per thread: the packed kernel's partial panel
    for s in range(T):
        t = s if reverse else T - 1 - s
        for b in range(b0, b1):
            if t < lengths[b]:
                for p in range(P):
                    dh_step[b, p] = dh[b, p] + dy[t, b, p]
            else:
                for p in range(P):
                    dh_step[b, p] = dh[b, p]
        if project:  # h' = W_hr (o * tanh(c'))
            for b in range(b0, b1):
                valid = t < lengths[b]
                for p in range(P):
                    dh_out[t, b, p] = dh_step[b, p] if valid else zero
            step_gemm(dh_step[b0:b1], weight_hr_t, weight_hr, d_hidden[b0:b1], 0.0, False)
        c_prev = c_state[t + r]
        for b in range(b0, b1):
            drow = dgates[t, b]
            if t >= lengths[b]:  # a finished sequence passes its gradient through
                for k in range(G):
                    drow[k] = zero
                continue
            cp, tc, dhid, dcb = c_prev[b], tanh_c[t, b], d_hidden[b], dc[b]
            ri, rf, rg, ro = gate_views(gates[t, b], H, H)  # each gate its own view:
            di, df, dg, do = gate_views(drow, H, H)  # 1.18 against 1.58 ms (_primitives)
            for j in range(H):
                i, f, g, o = ri[j], rf[j], rg[j], ro[j]
                th = tc[j]
                dhj = dhid[j]
                dcs = dcb[j] + dhj * o * (one - th * th)
                di[j] = dcs * g * i * (one - i)
                df[j] = dcs * cp[j] * f * (one - f)
                dg[j] = dcs * i * (one - g * g)
                do[j] = dhj * th * o * (one - o)
                dcb[j] = dcs * f
        dg = dgates[t, b0:b1]
        recurrent_gemm(dg, weight_hh_t, weight_hh, panels, dh_rec[b0:b1], 0.0, tiled, packed, tile)
        for b in range(b0, b1):
            if t < lengths[b]:
                for p in range(P):
                    dh[b, p] = dh_rec[b, p]
