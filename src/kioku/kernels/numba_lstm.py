"""The ``numba`` backend: :mod:`kioku.functional`'s LSTM contract with compiled loops.

Same signatures, same :class:`~kioku.functional.LSTMCache` (every field filled the way
the reference fills it), same results to rounding (float32 uses a rational tanh with
absolute error below 4e-7). Around the compiled loops: the input projection of all
steps is one GEMM before the loop and the weight gradients are GEMMs after it (the
backward: :mod:`._lstm_backward`, exported here).
Calls the loops do not cover fall back to the reference: mixed or non-float dtypes,
and backward calls that ask for ``dh_trace``/``dc_trace``. The RNN functions are the
reference ones (imported from it). The JIT is cached on disk (``cache=True``), so only
the first call on a machine pays the compilation.
"""

from __future__ import annotations

import numpy as np

from .. import functional
from ..functional import LSTMCache, length_mask, rnn_backward, rnn_forward
from . import _inference_plan, _mkl_rows, _path, _threads, _training_plan, _tuning
from ._contract import check_shape, compiled_dtype, steps_per_sequence
from ._entries import (
    HAS_BIAS,
    HAS_STATE,
    REVERSE,
    infer_one_part,
    infer_sequence,
)
from ._loop_gemms import project_inputs
from ._lstm_backward import lstm_backward
from ._lstm_loops import lstm_forward_loop, lstm_infer_loop
from ._mkl_rows import lstm_forward_mkl_rows
from ._mkl_units import lstm_infer_mkl_units
from ._mkl_units import packs as mkl_unit_packs
from ._pack_cache import NOT_KEPT, kept
from ._pack_cache import packed as packed_weights
from ._threads import in_phases, run_parts
from ._unit_split import (
    lstm_forward_units,
    lstm_infer_units,
    run_split,
    split_task,
)

__all__ = ["lstm_backward", "lstm_forward", "rnn_backward", "rnn_forward"]


# Each step computes its own input projection (float32) from this many rows per thread,
# when the input and recurrent weights together are at most FUSED_MAX_BYTES: every step
# then reads both, and beyond a few MiB (H = 650: 13.6 MB) that traffic costs more than
# the separate projection GEMM over all T * B rows.
FUSED_MIN_ROWS = _tuning.value("FUSED_MIN_ROWS")  # by hand: 4; reads the stored tuning
FUSED_MAX_BYTES = _tuning.value("FUSED_MAX_BYTES")  # by hand: 8 << 20 (8 MiB)
# Otherwise, up to PACKED_PROJECTION_MNK (M N K = T B I 4H) the projection GEMM before the
# loop also uses the packed kernel, BLAS above (its blocking pays off on bigger products).
# By hand 2,048 rows at H = I = 256 (one thread of an AMD EPYC: packed 3-9 % faster at
# 600-700 rows, OpenBLAS 4-5 % at 3,200-6,400); measured per machine: on an Intel Xeon
# with oneMKL the packed kernel ran level up to ~2e8 and MKL 8-25 % ahead from ~4e8.
PACKED_PROJECTION_MNK = _tuning.value("PACKED_PROJECTION_MNK")  # by hand: 2048 * 256 * 1024
# float32 backward without projection, I and P multiples of the packed kernel's panel
# width (NR), input and recurrent weights of at most PACKED_GRADS_MAX_BYTES together: the
# weight gradients on the packed kernel, on kioku's own threads, instead of OpenBLAS held
# to one thread per part (whose thread count is a global setting: switching it slowed
# NumPy's own GEMMs after each backward). Where OpenBLAS's kernels are faster than the
# packed one (another CPU's), the tuning lowers the limit; by hand: no limit.
PACKED_GRADS_MAX_BYTES = _tuning.value("PACKED_GRADS_MAX_BYTES")  # by hand: no limit
# From MKL_UNITS_MIN_BYTES of weight_hh on, an unfused float32 inference whose batch splits
# over threads splits each step by hidden units instead, each thread's share of the
# recurrent product on oneMKL's packed GEMM (_mkl_units: only where the `mkl` extra is
# installed); from MKL_UNITS_WIDE_MIN_BYTES where the row split would give each thread
# more than _mkl_units.NARROW_ROWS rows (the more rows share each weight read, the less
# the split by units saves); from MKL_UNITS_UNSPLIT_MIN_BYTES where the batch is too
# small to split by rows (one thread's loop or kioku's own split by units otherwise).
# Measured per machine; by hand: never.
MKL_UNITS_MIN_BYTES = _tuning.value("MKL_UNITS_MIN_BYTES")  # by hand: never
MKL_UNITS_WIDE_MIN_BYTES = _tuning.value("MKL_UNITS_WIDE_MIN_BYTES")  # by hand: never
MKL_UNITS_UNSPLIT_MIN_BYTES = _tuning.value("MKL_UNITS_UNSPLIT_MIN_BYTES")  # by hand: never
# From MKL_ROWS_MIN_BYTES of weight_hh on, an unfused float32 training call without
# projection, every step valid, runs each step's recurrent products (forward and
# backward) on oneMKL's packed GEMM, each thread on its own batch rows (_mkl_rows).
# Measured per machine; by hand: never.
MKL_ROWS_MIN_BYTES = _tuning.value("MKL_ROWS_MIN_BYTES")  # by hand: never


def lstm_forward(
    x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray | None = None,
    h0: np.ndarray | None = None, c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None, reverse: bool = False,
    weight_hr: np.ndarray | None = None, keep_cache: bool = True, reuse_packs: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LSTMCache | None]:  # fmt: skip
    """Run one LSTM direction over ``x (T, B, I)``: see :func:`kioku.functional.lstm_forward`.

    ``weight_ih (4H, I)``, ``weight_hh (4H, P)``, ``bias (4H,)``, ``h0 (B, P)``,
    ``c0 (B, H)``, ``lengths (B,)``, ``weight_hr (P, H)``. Returns ``y (T, B, P)``,
    ``h_n (B, P)``, ``c_n (B, H)`` and the cache; with ``keep_cache=False`` ``None`` in
    place of the cache, and a loop that keeps only the current state (no per-step
    gates, cells or hidden states beyond the output ``y``). With ``reuse_packs`` and
    ``keep_cache=False`` the packed float32 weights are kept for the next call while the
    weights stay unchanged (:mod:`kioku.kernels._pack_cache`: what the nn layers do).

    Calls a plan covers (:mod:`._inference_plan`: one float32 sequence with
    ``reuse_packs``; :mod:`._training_plan`: a small float32 batch keeping its cache)
    run it, planned on first use for these weight arrays: the same results bit for bit.
    """
    if lengths is None and weight_hr is None and type(x) is np.ndarray and x.ndim == 3:
        if keep_cache:
            if not reverse:
                out = _training_plan.planned_forward(x, weight_ih, weight_hh, bias, h0, c0)
                if out is not None:
                    return out
        elif reuse_packs and x.shape[1] == 1:
            out = _inference_plan.planned(x, weight_ih, weight_hh, bias, h0, c0, reverse)
            if out is not None:
                return out
    dtype = compiled_dtype(x, weight_ih, weight_hh, bias, h0, c0, weight_hr)
    if dtype is None or x.ndim != 3:
        args = (x, weight_ih, weight_hh, bias, h0, c0, lengths, reverse, weight_hr)
        return functional.lstm_forward(*args, keep_cache)
    T, B, I = x.shape
    H = weight_ih.shape[0] // 4
    P = weight_hr.shape[0] if weight_hr is not None else H
    mask = length_mask(lengths, T, B)
    check_shape("weight_ih", weight_ih, (4 * H, I))
    check_shape("weight_hh", weight_hh, (4 * H, P))
    check_shape("bias", bias, (4 * H,))
    check_shape("weight_hr", weight_hr, (P, H))
    check_shape("h0", h0, (B, P), (P,))
    check_shape("c0", c0, (B, H), (H,))
    all_valid = mask is None or bool(mask.all())
    path = _path.choose_path(
        T, B, I, H, P if weight_hr is not None else 0, dtype, keep_cache=keep_cache,
        all_valid=all_valid, weight_bytes=weight_ih.nbytes + weight_hh.nbytes,
        recurrent_bytes=weight_hh.nbytes,
    )  # fmt: skip
    if path.one_sequence:
        return _infer_sequence(x, weight_ih, weight_hh, bias, h0, c0, reverse, reuse_packs)
    return _run_loops(
        path, x, weight_ih, weight_hh, bias, h0, c0, mask, reverse, weight_hr, keep_cache,
        reuse_packs and not keep_cache,
    )  # fmt: skip


def _run_loops(path, x, weight_ih, weight_hh, bias, h0, c0, mask, reverse, weight_hr,
               keep_cache, reuse):  # fmt: skip
    """:func:`lstm_forward` on the compiled loops along ``path``: the input projection
    (unless fused), then the time loop over each part's batch rows."""
    dtype = x.dtype
    T, B, I = x.shape
    H = weight_ih.shape[0] // 4
    P = weight_hr.shape[0] if weight_hr is not None else H
    project = weight_hr is not None
    empty_panels = np.empty((0, 0, 0), dtype)
    slices, parts, fused, packed = path.slices, path.parts, path.fused, path.packed
    small, tiled = path.small, path.tiled
    x2 = np.ascontiguousarray(x).reshape(T * B, I)
    w_ih = np.ascontiguousarray(weight_ih)
    w_hh = np.ascontiguousarray(weight_hh)
    if packed:  # the recurrent product reads weight_hh.T packed once, nothing else
        # (fused: both weights in gate order, for one pass over both products a step;
        # mkl_rows: MKL's own packed copy, made below)
        panels = empty_panels if path.mkl_rows else packed_weights(w_hh, True, reuse, fused)
        w_hh_t = w_hh
    else:
        panels = empty_panels
        w_hh_t = w_hh if small or tiled else np.ascontiguousarray(weight_hh.T)
    w_hr = np.ascontiguousarray(weight_hr) if project else w_hh
    w_hr_t = w_hr if small or not project else np.ascontiguousarray(weight_hr.T)
    y = np.empty((T, B, P), dtype)
    steps_left = steps_per_sequence(mask, T, B)
    packed_ih = path.packed_ih
    panels_ih = packed_weights(w_ih, True, reuse, fused) if packed_ih else panels
    # the bias is added in the gate pass, not by the projection: one pass over (T, B, 4H)
    # fewer; every loop sums (x W_ih^T + h W_hh^T) + b in that order
    step_bias = np.ascontiguousarray(bias) if bias is not None else np.zeros(4 * H, dtype)
    blas_mnk = path.blas_mnk
    x3 = x2.reshape(T, B, I)
    # fused inference needs one step's pre-activations at a time, not all T
    gates = np.empty((1 if fused and not keep_cache else T, B, 4 * H), dtype)

    weights = (gates, w_hh, w_hh_t, panels, w_hr, w_hr_t)  # what every loop reads first
    step_inputs = (x3, panels_ih, step_bias, fused)

    def projection(part: int) -> None:
        if not fused:
            gates2 = gates.reshape(T * B, 4 * H)
            project_inputs(x2, w_ih, gates2, part, path.gemm_parts, panels_ih, packed_ih)

    if not keep_cache:
        h_n = np.zeros((B, P), dtype) if h0 is None else np.array(np.broadcast_to(h0, (B, P)))
        c_n = np.zeros((B, H), dtype) if c0 is None else np.array(np.broadcast_to(c0, (B, H)))
        h_scratch = np.empty((B, P), dtype)
        unprojected = np.empty((B, H), dtype) if project else h_scratch
        direct = not project and (mask is None or bool(mask.all()))

        def infer(part: int) -> None:
            rows = slices[part]
            lstm_infer_loop(
                *weights, h_n, h_scratch, c_n, unprojected, y, steps_left, bool(reverse), project,
                direct, rows.start, rows.stop, tiled, packed, *step_inputs,
            )  # fmt: skip

        if path.mkl_units:  # each step split by hidden units, on MKL's packed GEMM
            units = path.mkl_parts
            packs, offs = mkl_unit_packs(w_hh, B, units, reuse)
            args = (gates, packs, offs, step_bias, h_n, c_n, y, bool(reverse))
            task = split_task(lstm_infer_mkl_units, args, units)
            in_phases(path.gemm_parts, projection, task, blas_mnk, units)
        elif path.unit_parts > 1:  # a small batch: each step split by hidden units
            run_split(
                lstm_infer_units, (x3, panels_ih, panels, step_bias, gates, h_n, c_n, y,
                bool(reverse)), path.unit_parts, spin=True,
            )  # fmt: skip
        elif path.one_entry:  # small batches: one compiled entry
            infer_one_part(
                x2, w_ih, packed_ih, *weights, h_n, h_scratch, c_n, unprojected, y,
                steps_left, bool(reverse), project, direct, tiled, packed, *step_inputs,
            )  # fmt: skip
        elif fused:  # no projection phase: one hand-off to the threads, not two
            run_parts(infer, parts, blas_mnk > _threads.SOLO_GEMM_MNK, spin=True)
        else:
            in_phases(path.gemm_parts, projection, infer, blas_mnk, parts)
        return y, h_n, c_n, None

    r = int(bool(reverse))
    h_state = np.empty((T + 1, B, P), dtype)
    c_state = np.empty((T + 1, B, H), dtype)
    h_state[T * r] = 0 if h0 is None else h0
    c_state[T * r] = 0 if c0 is None else c0
    tanh_c = np.empty((T, B, H), dtype)
    hidden = np.empty((T, B, H), dtype) if project else None
    hid = hidden if project else tanh_c

    mkl_packs = _mkl_rows.packs(w_hh, slices, True) if path.mkl_rows else []

    def loop(part: int) -> None:
        rows = slices[part]
        if path.mkl_rows:  # each step's product on MKL's packed copy of weight_hh.T
            lstm_forward_mkl_rows(
                gates, mkl_packs[part], step_bias, h_state, c_state, tanh_c, y, bool(reverse),
                rows.start, rows.stop,
            )  # fmt: skip
            return
        lstm_forward_loop(
            *weights, h_state, c_state, tanh_c, hid, y, steps_left, bool(reverse), project,
            rows.start, rows.stop, tiled, packed, *step_inputs,
        )  # fmt: skip

    if path.unit_parts > 1:  # a small batch: each step split by hidden units
        run_split(
            lstm_forward_units, (x3, panels_ih, panels, step_bias, gates, h_state, c_state,
            tanh_c, y, bool(reverse)), path.unit_parts, spin=False,
        )  # fmt: skip
    elif fused:  # no projection phase: one hand-off to the threads, not two
        run_parts(loop, parts, blas_mnk > _threads.SOLO_GEMM_MNK)
    else:
        in_phases(path.gemm_parts, projection, loop, blas_mnk, parts)
    cache = LSTMCache(
        x, weight_ih, weight_hh, weight_hr, gates, h_state, c_state, tanh_c, hidden, mask,
        bool(reverse),
    )  # fmt: skip
    final = T * (1 - r)
    return y, h_state[final].copy(), c_state[final].copy(), cache


def _infer_sequence(x, weight_ih, weight_hh, bias, h0, c0, reverse, reuse):
    """:func:`lstm_forward` without a cache of one float32 sequence (batch 1), no
    projection, every step valid: one call of ``_entries.infer_sequence``, the entry
    the nn layers' inference plans call with the same argument types."""
    T, _, _ = x.shape
    H = weight_hh.shape[1]
    w_ih, w_hh = np.ascontiguousarray(weight_ih), np.ascontiguousarray(weight_hh)
    h_n = np.empty((1, 1, H), np.float32)
    c_n = np.empty((1, 1, H), np.float32)
    h_n[0] = 0 if h0 is None else h0
    c_n[0] = 0 if c0 is None else c0
    flags = HAS_STATE | (REVERSE if reverse else 0)
    if bias is None:
        b = zero = NOT_KEPT[1]
    else:  # the plans pass bias_ih and bias_hh; b + 0 is b
        b = np.ascontiguousarray(bias)
        zero = np.zeros_like(b)
        flags |= HAS_BIAS
    packs = kept(w_ih, True) + kept(w_hh, True) if reuse else NOT_KEPT + NOT_KEPT
    y = np.empty((T, 1, H), np.float32)
    infer_sequence(
        np.ascontiguousarray(x), w_ih, w_hh, b, zero, h_n, c_n, y, h_n, c_n, *packs, flags
    )
    return y, h_n[0], c_n[0], None
