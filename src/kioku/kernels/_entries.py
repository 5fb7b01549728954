"""One compiled entry for a whole LSTM call on one thread (batch 1, small shapes).

Each Numba dispatch from Python costs a few microseconds (more with many arguments);
at batch 1 a call's compiled work is tens of microseconds, so the input projection and
the loop of an inference call, and the loop and the weight gradients of a backward, run
from one entry here instead of one dispatch each. A backward too long for its weight
gradients to wait for the loop runs as a pipeline instead: the loop on one thread, the
gradients of its finished steps on another (:func:`pipelined_backward`). Arguments as in
:mod:`._lstm_loops`.
"""

from __future__ import annotations

import numpy as np

from ._aligned import aligned_panels
from ._jit import njit
from ._loop_gemms import (
    gradient_pass,
    gradient_scratch,
    packed_input_gradient,
    packed_weight_gradients,
    pass_bounds,
    project_inputs,
)
from ._lstm_loops import lstm_backward_loop, lstm_forward_loop, lstm_infer_loop
from ._pack_cache import _sample_or_pack
from ._packed import MR, NR, pack_panels
from ._row_loop import row_infer_loop
from ._spin import _atomic_load, _atomic_store
from ._threads import max_threads
from ._unit_split import PAD, barrier, run_split

# infer_sequence's flags
HAS_BIAS, HAS_STATE, REVERSE = 1, 2, 4


@njit(cache=True, nogil=True)
def _project(x2, weight_ih, packed_ih, gates, panels_ih, fused):
    """:func:`project_inputs` of all rows into ``gates (T, B, 4H)``, unless ``fused``."""
    if not fused:
        T, B, G = gates.shape
        gates2 = gates.reshape(T * B, G)
        project_inputs(x2, weight_ih, gates2, 0, 1, panels_ih, packed_ih)


@njit(cache=True, nogil=True)
def infer_one_part(
    x2, weight_ih, packed_ih, gates, weight_hh, weight_hh_t, panels, weight_hr,
    weight_hr_t, h_a, h_b, c, unprojected, y, lengths, reverse, project, direct, tiled, packed,
    x, panels_ih, step_bias, fused,
):  # fmt: skip
    """An inference call: the projection, then :func:`lstm_infer_loop` over the whole
    batch. Flat arguments: passing them as two tuples cost the dispatch 0.7 µs more
    (and a training step about 12 µs more), in alternating processes."""
    _project(x2, weight_ih, packed_ih, gates, panels_ih, fused)
    lstm_infer_loop(
        gates, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, h_a, h_b, c, unprojected,
        y, lengths, reverse, project, direct, 0, y.shape[1], tiled, packed, x, panels_ih,
        step_bias, fused,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def train_forward_one_part(x, weight_ih, weight_hh, bias, gates, h_state, c_state, tanh_c, y,
                           tiled):  # fmt: skip
    """A float32 training forward without projection, every sequence ``T`` long, on one
    thread in one compiled entry (one dispatch, not one for each packing, the projection
    and the loop: ~10 µs of a 0.1 ms call at batch 1): both weights packed afresh (a
    training step changes them), the input projection, then :func:`lstm_forward_loop`.
    ``x (T, B, I)``, ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias (4H,)``;
    ``h_state``/``c_state (T+1, B, H)`` hold the initial state in slot 0; fills ``gates
    (T, B, 4H)`` (activated i, f, g, o), the states, ``tanh_c (T, B, H)`` and ``y (T, B,
    H)`` as the loop does."""
    T, B, I = x.shape
    G, H = weight_hh.shape
    count = (G + NR - 1) // NR
    panels_ih = aligned_panels(count, I, NR)
    pack_panels(weight_ih.T, panels_ih)
    panels = aligned_panels(count, H, NR)
    pack_panels(weight_hh.T, panels)
    project_inputs(x.reshape(T * B, I), weight_ih, gates.reshape(T * B, G), 0, 1, panels_ih,
                   True)  # fmt: skip
    lengths = np.empty(B, np.int64)
    lengths.fill(T)
    lstm_forward_loop(
        gates, weight_hh, weight_hh, panels, weight_hh, weight_hh, h_state, c_state, tanh_c,
        tanh_c, y, lengths, False, False, 0, B, tiled, True, x, panels_ih, bias, False,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _own_panels(weight_hh, panels):
    """``panels``, or where the caller passed none (a ``(0, 0, 0)`` array) ``weight_hh
    (4H, H)`` packed here as :func:`~kioku.kernels._packed.pack_panels` packs it: a
    packing and an allocation fewer dispatched from Python (a training step packs its
    weights afresh anyway)."""
    if panels.shape[0] != 0:
        return panels
    G, H = weight_hh.shape
    own = aligned_panels((H + NR - 1) // NR, G, NR)
    pack_panels(weight_hh, own)
    return own


@njit(cache=True, nogil=True)
def packed_backward_one_part(
    dy, gates, c_state, tanh_c, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, dgates,
    dh, dc, dh_out, dh_step, d_hidden, dh_rec, lengths, reverse, tiled, x2, h_in2, weight_ih,
    need_dx, dx2, dw_ih, dw_hh, dbias, accumulate, kc,
):  # fmt: skip
    """A float32 backward without projection on one thread in one compiled entry (one
    dispatch at batch 1): :func:`lstm_backward_loop` over the whole batch on the packed
    ``panels`` (packed here from ``weight_hh`` when empty: :func:`_own_panels`), then
    :func:`packed_weight_gradients` in passes of ``kc`` rows; arguments as there."""
    panels = _own_panels(weight_hh, panels)
    lstm_backward_loop(
        dy, gates, c_state, tanh_c, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t,
        dgates, dh, dc, dh_out, dh_step, d_hidden, dh_rec, lengths, reverse, False, 0,
        dy.shape[1], tiled, True,
    )  # fmt: skip
    T, B, G = dgates.shape
    packed_weight_gradients(
        dgates.reshape(T * B, G), x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias,
        accumulate, 0, 1, kc,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def pipelined_backward(
    dy, gates, c_state, tanh_c, weight_hh, panels, dgates, dh, dc, dh_step, dh_rec, lengths,
    tiled, x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias, accumulate, kc, part,
    parts, progress,
):  # fmt: skip
    """:func:`packed_backward_one_part` of a forward direction whose every step is valid,
    on ``parts`` (1 or 2) threads as a pipeline: thread 0 runs the loop a pass of ``kc``
    rows at a time (the last steps first, as the loop goes) and then the input gradient;
    thread ``parts - 1`` takes the weight gradients of each pass as soon as the loop has
    finished its steps, while the loop goes on. The passes and their order are
    :func:`packed_weight_gradients`' (the loop's steps in slices, each carrying
    ``dh``/``dc`` to the next): the same results bit for bit, on one thread or two.
    ``progress``: :func:`kioku.kernels._unit_split.counters` of 2 (thread 0's count of
    passes done in slot 0). Arguments as in :func:`packed_backward_one_part` (``panels``
    empty: packed by thread 0)."""
    T, B, G = dgates.shape
    N = T * B
    kc = min(kc, N)
    steps = kc // B
    passes = -(-N // kc)
    dgates2 = dgates.reshape(N, G)
    stop = 2 * PAD
    if part == 0:
        panels = _own_panels(weight_hh, panels)
        for j in range(passes):
            t1 = T - j * steps
            t0 = max(0, t1 - steps)
            g = dgates[t0:t1]
            lstm_backward_loop(
                dy[t0:t1], gates[t0:t1], c_state[t0:t1], tanh_c[t0:t1], weight_hh, weight_hh,
                panels, weight_hh, weight_hh, g, dh, dc, g, dh_step, dh_step, dh_rec, lengths,
                False, False, 0, B, tiled, True,
            )  # fmt: skip
            _atomic_store(progress, 0, j + 1)
        if need_dx:
            packed_input_gradient(dgates2, weight_ih, dx2, np.empty((MR, NR), np.float32))
    if part != parts - 1:
        return
    I, P = x2.shape[1], h_in2.shape[1]
    dg_t, x_panels, h_panels, total = gradient_scratch(N, G, I, P, kc, 0, G)
    tile = np.empty((MR, NR), np.float32)
    for j in range(passes):
        if parts > 1:  # until thread 0 has finished pass j (or failed)
            barrier(progress, 1, 2, j + 1)
            if _atomic_load(progress, stop) != 0:
                return
        k0, k1 = pass_bounds(N, kc, j)
        beta = 1.0 if accumulate or j > 0 else 0.0
        gradient_pass(
            dgates2, x2, h_in2, dw_ih, dw_hh, k0, k1 - k0, beta, 0, G, dg_t, x_panels,
            h_panels, total, tile,
        )  # fmt: skip
    for g in range(G):
        dbias[g] = total[g]


def one_part_backward(
    pipeline: bool, dy, gates, c_state, tanh_c, weight_hh, panels, dgates, dh, dc, dh_step,
    dh_rec, lengths, reverse, tiled, x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias,
    accumulate, kc,
) -> None:  # fmt: skip
    """A float32 direction's backward without projection, all of it on one thread
    (:func:`packed_backward_one_part`), or with ``pipeline`` (every step valid), in the
    forward direction and with two threads in the budget, its weight gradients handed to
    a second thread a pass at a time (:func:`pipelined_backward`): the same results bit
    for bit either way. Arguments as in :func:`packed_backward_one_part`."""
    if pipeline and not reverse and max_threads() >= 2:
        run_split(
            pipelined_backward, (dy, gates, c_state, tanh_c, weight_hh, panels, dgates, dh, dc,
            dh_step, dh_rec, lengths, tiled, x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh,
            dbias, accumulate, kc), 2, spin=True,
        )  # fmt: skip
        return
    packed_backward_one_part(
        dy, gates, c_state, tanh_c, weight_hh, weight_hh, panels, weight_hh, weight_hh, dgates,
        dh, dc, dgates, dh_step, dh_step, dh_rec, lengths, reverse, tiled, x2, h_in2, weight_ih,
        need_dx, dx2, dw_ih, dw_hh, dbias, accumulate, kc,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _current_panels(weight, panels, sample, address):
    """``weight (N, K).T`` packed: the kept ``panels``, repacked in place by
    :func:`_sample_or_pack` if its check fails, or (``sample`` empty: none kept, a small
    weight) fresh panels for this call only."""
    source = weight.T
    if sample.shape[0] == 0:
        K, N = source.shape
        fresh = aligned_panels((N + NR - 1) // NR, K, NR)
        pack_panels(source, fresh)
        return fresh
    _sample_or_pack(source, sample, address, panels, False)
    return panels


@njit(cache=True, nogil=True)
def _kept_fits(weight, panels, sample):
    K, N = weight.shape[1], weight.shape[0]
    return sample.shape[0] == 0 or (
        panels.shape[0] == (N + NR - 1) // NR and panels.shape[1] == K and panels.shape[2] == NR
    )


@njit(cache=True, nogil=True)
def infer_sequence(
    x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0, y, h_n, c_n, panels_ih, sample_ih,
    address_ih, panels_hh, sample_hh, address_hh, flags,
):  # fmt: skip
    """A float32 inference call of one sequence (batch 1) without projection, every step
    valid, in one dispatch: what :func:`numba_lstm.lstm_forward` runs for such calls and
    what :mod:`kioku.kernels._inference_plan` runs for a planned one (one compiled
    specialisation for both, so a plan costs no compilation of its own). ``x (T, 1, I)``,
    ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih``/``bias_hh (4H,)`` (read with
    ``HAS_BIAS``, added here), ``h0``/``c0 (1, 1, H)`` (read with ``HAS_STATE``, else
    zeros; they may be ``h_n``/``c_n`` themselves); fills ``y (T, 1, H)``,
    ``h_n``/``c_n (1, 1, H)``. Each weight's ``panels, sample, address`` are its kept
    packed copy, checked here as :mod:`._pack_cache` checks it (``sample`` empty: packed
    afresh for this call). The projection of all steps, then
    :func:`~kioku.kernels._row_loop.row_infer_loop`. Returns 0, or 1 without computing
    anything when the shapes do not fit together (an array reshaped in place since a
    plan was made)."""
    T, B, I = x.shape
    G, H = weight_hh.shape
    has_bias = flags & HAS_BIAS != 0
    has_state = flags & HAS_STATE != 0
    fits = (
        B == 1
        and G == 4 * H
        and weight_ih.shape[0] == G
        and weight_ih.shape[1] == I
        and y.shape[0] == T
        and y.shape[1] == 1
        and y.shape[2] == H
        and h_n.shape[0] == 1
        and h_n.shape[1] == 1
        and h_n.shape[2] == H
        and c_n.shape[0] == 1
        and c_n.shape[1] == 1
        and c_n.shape[2] == H
        and (not has_bias or (bias_ih.shape[0] == G and bias_hh.shape[0] == G))
        and (not has_state or (h0.shape[1] == 1 and h0.shape[2] == H))
        and (not has_state or (c0.shape[1] == 1 and c0.shape[2] == H))
        and _kept_fits(weight_ih, panels_ih, sample_ih)
        and _kept_fits(weight_hh, panels_hh, sample_hh)
    )
    if not fits:
        return 1
    packs_ih = _current_panels(weight_ih, panels_ih, sample_ih, address_ih)
    packs_hh = _current_panels(weight_hh, panels_hh, sample_hh, address_hh)
    bias = np.zeros(G, np.float32)  # added in the gate pass, as every inference loop adds it
    if has_bias:
        for g in range(G):
            bias[g] = bias_ih[g] + bias_hh[g]
    h, c = h_n[0], c_n[0]
    for j in range(H):  # element by element: h0 may be h_n itself
        h[0, j] = h0[0, 0, j] if has_state else 0
        c[0, j] = c0[0, 0, j] if has_state else 0
    gates = np.empty((T, 1, G), np.float32)
    _project(x.reshape(T, I), weight_ih, True, gates, packs_ih, False)
    row_infer_loop(gates, packs_hh, bias, h, c, y, flags & REVERSE != 0)
    return 0
