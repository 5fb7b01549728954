"""The ``numba`` backend's LSTM backward: backprop through time on the compiled loops
(:func:`lstm_backward`, exported by :mod:`kioku.kernels.numba_lstm` beside the forward).

The path is the forward's (:func:`kioku.kernels._path.choose_path` with ``keep_cache``):
the loop over the batch's rows, or split by hidden units for a small batch
(:mod:`._unit_split`), or one compiled entry on one thread (:mod:`._entries`); then the
GEMMs after the loop over all ``T * B`` rows (``dx`` and the weight gradients, on the
packed kernel or BLAS), on the gathered valid rows where most rows are padding
(:mod:`._padding`). A small forward-direction batch runs its training plan's backward
(:mod:`._training_plan`).
"""

from __future__ import annotations

import numpy as np

from .. import functional
from ..functional import LSTMCache, LSTMGrads
from . import _mkl_rows, _padding, _path, _training_plan
from ._contract import added_into, check_shape, compiled_dtype, fits, steps_per_sequence
from ._entries import one_part_backward
from ._loop_gemms import packed_weight_gradients, weight_gradients
from ._lstm_loops import lstm_backward_loop
from ._mkl_rows import lstm_backward_mkl_rows
from ._pack_cache import packed as packed_weights
from ._threads import in_phases, run_parts
from ._unit_split import lstm_backward_units, run_split


def lstm_backward(
    dy: np.ndarray, cache: LSTMCache, dh_n: np.ndarray | None = None,
    dc_n: np.ndarray | None = None, need_dx: bool = True,
    dh_trace: np.ndarray | None = None, dc_trace: np.ndarray | None = None,
    grads_into: tuple[np.ndarray, np.ndarray] | None = None,
    dgates_buffer: np.ndarray | None = None,
) -> LSTMGrads:  # fmt: skip
    """Backprop through time for one direction: see :func:`kioku.functional.lstm_backward`.

    ``dy (T, B, P)``, ``dh_n (B, P)``, ``dc_n (B, H)``; returns :class:`LSTMGrads`
    (``dx (T, B, I)``, ``dweight_ih (4H, I)``, ``dweight_hh (4H, P)``, ``dbias (4H,)``,
    ``dweight_hr (P, H)`` or ``None``, ``dh0 (B, P)``, ``dc0 (B, H)``). Calls with
    ``dh_trace``/``dc_trace`` run the reference. With ``grads_into = (gw_ih (4H, I),
    gw_hh (4H, P))`` (what the nn layers pass: their gradient buffers) the weight
    gradients are added into these arrays, and the returned ``dweight_ih``/``dweight_hh``
    are those arrays, totals included: no fresh ``(4H, I)``/``(4H, P)`` arrays (6 MiB at
    the second layer of a 2 x 256 bidirectional stack, both directions together).
    ``dgates_buffer``, a C-contiguous ``(T, B, 4H)`` array of the gates' dtype, is used
    as the gate gradients' scratch (overwritten; ignored when it does not fit): the nn
    layers keep one per direction across calls, since a fresh one each call was
    page-faulted in anew (glibc returns the freed top of its heap to the system).
    """
    if (
        dh_n is None and dc_n is None and dh_trace is None and dc_trace is None
        and cache.hooks is None and cache.mask is None and cache.hidden is None
        and not cache.reverse
    ):  # fmt: skip
        planned = _training_plan.planned_backward(dy, cache, need_dx, grads_into, dgates_buffer)
        if planned is not None:
            return planned
    x = cache.x
    dtype = compiled_dtype(x, dy, cache.gates)
    if dtype is None or dh_trace is not None or dc_trace is not None:
        grads = functional.lstm_backward(dy, cache, dh_n, dc_n, need_dx, dh_trace, dc_trace)
        return added_into(grads, grads_into)
    T, B, I = x.shape
    H = cache.gates.shape[2] // 4
    P = cache.h_state.shape[2]
    into = grads_into is not None and fits(grads_into, ((4 * H, I), (4 * H, P)), dtype)
    project = cache.hidden is not None
    path = _path.choose_path(
        T, B, I, H, P if project else 0, dtype, keep_cache=True, all_valid=cache.mask is None,
        weight_bytes=cache.weight_ih.nbytes + cache.weight_hh.nbytes,
        recurrent_bytes=cache.weight_hh.nbytes,
    )  # fmt: skip
    slices, small, tiled, packed = path.slices, path.small, path.tiled, path.packed

    reuse = dgates_buffer is not None and fits((dgates_buffer,), (cache.gates.shape,), dtype)
    dgates = dgates_buffer if reuse else np.empty_like(cache.gates)
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
    check_shape("dy", dy, (T, B, P))
    check_shape("dh_n", dh, (B, P))
    check_shape("dc_n", dc, (B, H))
    dh_out = np.empty((T, B, P), dtype) if project else dgates
    dh_step = np.empty((B, P), dtype)
    d_hidden = np.empty((B, H), dtype) if project else dh_step
    dh_rec = np.empty((B, P), dtype)
    w_ih = np.ascontiguousarray(cache.weight_ih)
    w_hh = np.ascontiguousarray(cache.weight_hh)
    if path.mkl_rows:  # dh = dgates @ weight_hh on MKL's packed copy, one per row count
        panels = np.empty((0, 0, 0), dtype)
        mkl_packs = _mkl_rows.packs(w_hh, slices, False)
        w_hh_t = w_hh
    elif packed:  # dh = dgates @ weight_hh reads weight_hh packed once, nothing else
        panels = packed_weights(w_hh, False, False)
        w_hh_t = w_hh
    else:
        panels = np.empty((0, 0, 0), dtype)
        w_hh_t = np.ascontiguousarray(w_hh.T) if small or tiled else w_hh
    w_hr = np.ascontiguousarray(cache.weight_hr) if project else w_hh
    w_hr_t = np.ascontiguousarray(w_hr.T) if project and small else w_hr
    # dy may be a strided view (one direction of a concatenated output): read in place
    steps_left = steps_per_sequence(cache.mask, T, B)

    x2 = np.ascontiguousarray(x).reshape(T * B, I)
    h_in2 = cache.h_in.reshape(T * B, P)
    dx = np.empty((T, B, I), dtype) if need_dx else None
    dweight_ih = grads_into[0] if into else np.empty((4 * H, I), dtype)
    dweight_hh = grads_into[1] if into else np.empty((4 * H, P), dtype)
    dbias = np.empty(4 * H, dtype)
    dweight_hr = np.empty((P, H), dtype) if project else None
    hidden2 = cache.hidden.reshape(T * B, H) if project else h_in2

    parts, gemm_parts = len(slices), path.gemm_parts

    def units(part: int) -> None:  # a small batch: each step split by hidden units
        run_split(
            lstm_backward_units, (dy, cache.gates, cache.c_state, cache.tanh_c, panels, dgates,
            dh, dc, cache.reverse), path.unit_parts, spin=False,
        )  # fmt: skip

    def by_rows(part: int) -> None:
        rows = slices[part]
        if path.mkl_rows:
            lstm_backward_mkl_rows(
                dy, cache.gates, cache.c_state, cache.tanh_c, mkl_packs[part], dgates, dh, dc,
                cache.reverse, rows.start, rows.stop,
            )  # fmt: skip
            return
        lstm_backward_loop(
            dy, cache.gates, cache.c_state, cache.tanh_c, w_hh, w_hh_t, panels, w_hr, w_hr_t,
            dgates, dh, dc, dh_out, dh_step, d_hidden, dh_rec, steps_left, cache.reverse,
            project, rows.start, rows.stop, tiled, packed,
        )  # fmt: skip

    # the unit split runs its own threads: one part here
    loop, parts = (units, 1) if path.unit_parts > 1 else (by_rows, parts)
    dx2 = (dx if need_dx else dgates).reshape(T * B, -1)
    dh_out2 = dh_out.reshape(T * B, -1)

    def finish_on(g2, in2, h2, d2, part: int) -> None:  # the GEMMs after the loop, on rows
        if path.packed_grads:  # the packed kernel, no BLAS: OpenBLAS's count left alone
            packed_weight_gradients(
                g2, in2, h2, w_ih, need_dx, d2, dweight_ih, dweight_hh, dbias, into, part,
                gemm_parts, path.pass_rows(T),
            )  # fmt: skip
        else:  # with a projection every row (_padding never gathers then)
            weight_gradients(
                g2, in2, h2, w_ih, need_dx, d2, dweight_ih, dweight_hh, dbias, project,
                dh_out2 if project else g2, hidden2 if project else h2,
                dweight_hr if project else dweight_hh, into, part, gemm_parts,
            )  # fmt: skip

    rows = _padding.valid_rows(cache.mask, project)
    g2 = dgates.reshape(T * B, 4 * H)
    if rows is not None:  # mostly padding: the GEMMs on the valid rows alone
        blas = not path.packed_grads
        run_parts(loop, parts, single_blas=blas)
        dense = _padding.gather(rows, g2, x2, h_in2)
        dx_dense = np.empty((len(rows), I), dtype) if need_dx else dense[0]
        run_parts(lambda part: finish_on(*dense, dx_dense, part), gemm_parts, single_blas=blas)
        if need_dx:
            _padding.scatter(rows, dx_dense, dx2)
    elif path.packed_grads and parts == gemm_parts == path.unit_parts == 1 and not path.mkl_rows:
        one_part_backward(  # one entry, or a pipeline from path.pipeline_steps on
            path.pipelined(T), dy, cache.gates, cache.c_state, cache.tanh_c, w_hh, panels,
            dgates, dh, dc, dh_step, dh_rec, steps_left, cache.reverse, tiled, x2, h_in2, w_ih,
            need_dx, dx2, dweight_ih, dweight_hh, dbias, into, path.pass_rows(T),
        )  # fmt: skip
    else:  # BLAS held to one thread per part where the GEMMs call it
        blas_mnk = 0 if path.packed_grads else float("inf")
        in_phases(parts, loop, lambda part: finish_on(g2, x2, h_in2, dx2, part), blas_mnk,
                  gemm_parts)  # fmt: skip
    grads = LSTMGrads(dx, dweight_ih, dweight_hh, dbias, dweight_hr, dh, dc)
    return grads if into else added_into(grads, grads_into)
