"""Which path one LSTM call takes through the compiled backend, decided in one place.

:func:`choose_path` turns a call's shape, dtype and kind (inference or training) into
a :class:`Path`; :func:`~kioku.kernels.numba_lstm.lstm_forward`,
:func:`~kioku.kernels.numba_lstm.lstm_backward` and the plans
(:mod:`._inference_plan`, :mod:`._training_plan`) all read that one value, so a rule
exists once. The thresholds are read from their modules at call time
(``_threads.MIN_ROWS``, ``numba_lstm.FUSED_MIN_ROWS``, ...), so values measured on the
machine (:mod:`._tuning`) take effect without a re-import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _mkl_units, _primitives, _threads, numba_lstm
from ._loop_gemms import KC, pass_rows
from ._packed import NR
from ._tuning_choices import NO_LIMIT

_F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Path:
    """How one direction's call runs.

    ``slices``: the batch rows of each thread's part (one part: one thread); ``gemm_parts``:
    threads that split the GEMMs around the loops (the input projection, the weight
    gradients): ``len(slices)``, or more where those GEMMs are big and the batch too small
    to split (:func:`kioku.kernels._threads.gemm_threads`); ``unit_parts``: threads that
    split each step by hidden units where the batch is not split by rows
    (:mod:`kioku.kernels._unit_split`; 1: no such split); ``budget_free``: every part count
    is one whatever the thread budget (no budget read); ``packed``: float32, the recurrent
    product on the packed kernel; ``fused``: each step projects its own inputs (no
    projection GEMM over all ``T * B`` rows); ``packed_ih``: the input projection on the
    packed kernel; ``small``: at most ``SMALL_ROWS`` rows per part (compiled dot products
    instead of BLAS); ``tiled``: ``weight_hh`` beyond the L2 cache; ``one_sequence``: a
    float32 inference of one sequence without projection, every step valid, as one
    ``infer_sequence`` call; ``blas_mnk``: the largest GEMM left to BLAS (``M * N * K``);
    ``one_entry``: an inference call on one part with only small BLAS GEMMs, as one compiled
    entry; ``mkl_units``: an unfused float32 inference split over ``mkl_parts`` threads by
    hidden units instead of batch rows (``parts`` of them, or, where the batch is too small
    to split by rows, the thread budget), each step's recurrent product on oneMKL's packed
    GEMM (:mod:`kioku.kernels._mkl_units`); ``packed_grads``: the backward's weight
    gradients on the packed kernel (float32, no projection, ``I`` and ``P`` multiples of the
    panel width); ``mkl_rows``: an unfused float32 training call, no projection, every
    step valid, each part's recurrent products (forward and backward) on oneMKL's packed
    GEMM (:mod:`kioku.kernels._mkl_rows`); ``max_steps``: the most steps a call of this
    batch may have and still take this path (what a plan checks instead of deciding
    again); ``pipeline_steps``: the fewest steps from which a training call of this batch,
    all of it on one thread (``parts``, ``gemm_parts`` and ``unit_parts`` 1) with the packed
    weight gradients, every step valid, hands those gradients a pass at a time to a second
    thread while its backward loop goes on
    (:func:`~kioku.kernels._entries.pipelined_backward`; a forward direction, with two
    threads in the budget when it runs: checked then), ``NO_LIMIT`` where it never does.
    """

    slices: tuple[slice, ...]
    gemm_parts: int
    unit_parts: int
    budget_free: bool
    packed: bool
    fused: bool
    packed_ih: bool
    small: bool
    tiled: bool
    one_sequence: bool
    blas_mnk: float
    one_entry: bool
    mkl_units: bool
    mkl_parts: int
    mkl_rows: bool
    packed_grads: bool
    max_steps: int
    pipeline_steps: int

    @property
    def parts(self) -> int:
        """Threads the batch splits over."""
        return len(self.slices)

    def pipelined(self, steps: int) -> bool:
        """Whether a training call of ``steps`` steps on this path has a pipelined
        backward (with two threads in the budget when it runs; the same passes, on one
        thread, without)."""
        return steps >= self.pipeline_steps

    def pass_rows(self, steps: int) -> int:
        """Rows per pass of the packed weight gradients of a call of ``steps`` steps:
        :func:`~kioku.kernels._loop_gemms.pass_rows`, whole steps where it pipelines."""
        batch = self.slices[-1].stop if self.slices else 0
        return pass_rows(steps, batch, self.pipelined(steps))


def fused_rows(rows_per_part: int, weight_bytes: int) -> bool:
    """Whether each step projects its own inputs: at least ``FUSED_MIN_ROWS`` rows per
    part and input and recurrent weights of at most ``FUSED_MAX_BYTES`` together."""
    return rows_per_part >= numba_lstm.FUSED_MIN_ROWS and weight_bytes <= numba_lstm.FUSED_MAX_BYTES


def choose_path(
    steps: int, batch: int, features: int, hidden: int, proj: int, dtype: np.dtype, *,
    keep_cache: bool, all_valid: bool, weight_bytes: int, recurrent_bytes: int,
) -> Path:  # fmt: skip
    """The path of a call over ``x (steps, batch, features)`` with ``hidden`` cells
    projected to ``proj`` output features (``0``: no projection), ``dtype`` float32 or
    float64, keeping the cache (training) or not (inference), every step of every
    sequence valid (``all_valid``: no shorter lengths), ``weight_bytes`` of
    ``weight_ih`` and ``weight_hh`` together, ``recurrent_bytes`` of ``weight_hh``."""
    T, B, I, H = steps, batch, features, hidden
    project = proj > 0
    P = proj if project else H
    float32 = dtype == _F32
    flops = 8.0 * B * H * (P + (H if project else 0))
    slices = tuple(_threads.batch_slices(B, flops))
    parts = len(slices)
    gemm_parts = _threads.gemm_threads(parts, 8.0 * T * B * H * I)
    unit_parts = 1
    if parts == 1 and float32 and not project and all_valid and I > 0 and T > 1:
        # the forward's panels hold GATE_UNITS units, the backward's NR: the fewer
        most = -(-H // NR)
        unit_parts = _threads.unit_threads(flops, most, keep_cache, B)
        if weight_bytes > numba_lstm.FUSED_MAX_BYTES * unit_parts:  # each step reads its share
            unit_parts = 1
    most_rows = -(-B // parts)  # the slices differ by one row at most
    small = most_rows <= _primitives.SMALL_ROWS
    tiled = recurrent_bytes > _primitives.L2_BYTES
    packed = float32
    limit = numba_lstm.PACKED_PROJECTION_MNK
    step_mnk = B * I * 4 * H  # one step's share of the input projection's M N K
    # inference split by units on MKL's packed GEMM: a batch too small to split by rows
    # splits on the whole budget, in place of kioku's own unit split, the fused loop or
    # one thread (2-core Intel Xeon, T = 35: B = 1, H = 512 3.0 vs 6.3 and 7.0 ms; B = 4,
    # H = 650 8.4 vs 11.2 and 13.6; but B = 1, H = 256 0.72 vs 0.53 and 0.54): a
    # threshold of its own
    if parts == 1:
        mkl_min = numba_lstm.MKL_UNITS_UNSPLIT_MIN_BYTES
    elif most_rows <= _mkl_units.NARROW_ROWS:
        mkl_min = numba_lstm.MKL_UNITS_MIN_BYTES
    else:
        mkl_min = numba_lstm.MKL_UNITS_WIDE_MIN_BYTES
    mkl_parts = 1
    if (
        packed and not (keep_cache or project) and all_valid and I > 0
        and T >= _mkl_units.MIN_STEPS and _mkl_units.AVAILABLE and recurrent_bytes >= mkl_min
    ):  # fmt: skip
        mkl_parts = parts if parts > 1 else min(_threads.max_threads(), -(-H // _mkl_units.ALIGN))
    unsplit_mkl = parts == 1 and mkl_parts > 1
    if unsplit_mkl:
        unit_parts = 1
    budget_free = (
        gemm_parts == 1 and unit_parts == 1 and not unsplit_mkl
        and (flops < _threads.MIN_FLOPS or B // _threads.MIN_ROWS < 2)
    )  # fmt: skip
    one_sequence = (
        B == 1 and unit_parts == 1 and not unsplit_mkl and float32
        and not (keep_cache or project) and all_valid
        and T * step_mnk <= limit and not fused_rows(1, weight_bytes)
    )  # fmt: skip
    # each step projecting its own inputs runs that projection on the loop's threads: not
    # where the projection alone would get more (B = 4, H = 256, two threads: the forward
    # 1.86 ms unfused with a split projection, 2.34 ms fused)
    fused = (
        packed and I > 0 and not unsplit_mkl
        and (unit_parts > 1 or (gemm_parts == parts and fused_rows(B // parts, weight_bytes)))
    )  # fmt: skip
    mkl_units = mkl_parts > 1 and not fused
    # training by rows, each step's products on MKL's packed GEMM: from a few MiB of
    # weight_hh (past the L2) on a 2-core Intel Xeon, 1.2-1.3x kioku's packed kernel
    mkl_rows = (
        packed and keep_cache and not (project or fused) and all_valid and I > 0
        and unit_parts == 1 and T >= _mkl_units.MIN_STEPS and _mkl_units.AVAILABLE
        and recurrent_bytes >= numba_lstm.MKL_ROWS_MIN_BYTES
    )  # fmt: skip
    packed_ih = packed and (fused or T * step_mnk <= limit)
    blas_mnk = max(  # the loops' own products are not BLAS's
        0 if packed_ih else T * B * I * 4 * H,
        0 if packed or small or tiled else most_rows * P * 4 * H,
        most_rows * H * P if project and not small else 0,
    )
    # the longest call that keeps this path: packed_ih holds up to M N K `limit`
    max_steps = limit // step_mnk if packed_ih and not fused and step_mnk else NO_LIMIT
    packed_grads = (
        packed and not project and weight_bytes <= numba_lstm.PACKED_GRADS_MAX_BYTES
        and I % NR == 0 and P % NR == 0
    )  # fmt: skip
    pipeline_steps = NO_LIMIT
    if packed_grads and keep_cache and all_valid and parts == unit_parts == 1 and 0 < B <= KC:
        per_step = 8.0 * B * H * I  # one GEMM around the loop, per step
        least = _threads.PIPELINE_MIN_FLOPS / per_step
        if math.isfinite(least):  # and at least two passes of the weight gradients
            pipeline_steps = max(math.ceil(least), pass_rows(KC, B, True) // B + 1)
    return Path(
        slices=slices, gemm_parts=gemm_parts, unit_parts=unit_parts, budget_free=budget_free,
        packed=packed, fused=fused, packed_ih=packed_ih, small=small, tiled=tiled,
        one_sequence=one_sequence, blas_mnk=blas_mnk,
        one_entry=gemm_parts == unit_parts == 1 and blas_mnk <= _threads.SOLO_GEMM_MNK
        and not mkl_units,
        mkl_units=mkl_units, mkl_parts=mkl_parts if mkl_units else 1, mkl_rows=mkl_rows,
        packed_grads=packed_grads, max_steps=max_steps,
        pipeline_steps=pipeline_steps,
    )  # fmt: skip
