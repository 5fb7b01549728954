"""The probes of the choices that exist only with oneMKL (the ``mkl`` extra): its GEMM
against OpenBLAS (``MKL_MIN_MNK``), inference split by units on its packed GEMM
(``MKL_UNITS_*``) and training's per-step products on it (``MKL_ROWS_MIN_BYTES``). Each
says why it has no levels where MKL is not installed. Same contract as
:mod:`._tuning_probes`, which exports them by name.
"""

from __future__ import annotations

import numpy as np

from . import _blas, _gemm, _mkl_units, _threads, numba_lstm
from ._probe_timing import (
    Clock,
    _compare,
    _eval_levels,
    _one_thread_note,
    _planned_training,
    _probe_threads,
    _steps,
    _with,
)
from ._tuning_choices import NO_LIMIT


def _mkl_unit_levels(choice, clock: Clock, scale: float, batch: int, name: str, steps: int = 20):
    """An inference call (``steps`` steps, ``batch`` rows, H = I as listed; its quantity the
    recurrent weight's bytes, ``16 H^2``) with the packed weights kept, as the layers call
    it in eval mode, each step split over the threads by hidden units on oneMKL's packed
    GEMM or as the choices measured before send it (``name`` forced)."""
    if _blas.MKL is None or not _mkl_units.AVAILABLE:
        return [], "oneMKL's packed GEMM not installed (the mkl extra): steps split by rows"
    note = _one_thread_note()
    if note:
        return [], note
    setting = (name, numba_lstm, 0, NO_LIMIT)
    levels = _eval_levels(choice, clock, _steps(steps, scale), batch, setting, lambda h: 16 * h * h)
    return levels, None


def mkl_units(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MKL_UNITS_MIN_BYTES``: :func:`_mkl_unit_levels` at 8 rows per thread, against
    the split by rows."""
    return _mkl_unit_levels(choice, clock, scale, 8 * _probe_threads(), "MKL_UNITS_MIN_BYTES")


def mkl_units_wide(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MKL_UNITS_WIDE_MIN_BYTES``: :func:`_mkl_unit_levels` at 32 rows per thread,
    against the split by rows; 10 steps (four times the rows of the others: the tuning
    stays near its minute)."""
    batch = 32 * _probe_threads()
    return _mkl_unit_levels(choice, clock, scale, batch, "MKL_UNITS_WIDE_MIN_BYTES", 10)


def mkl_units_unsplit(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MKL_UNITS_UNSPLIT_MIN_BYTES``: :func:`_mkl_unit_levels` at batch 1, against one
    thread's loop or kioku's own split by units (whichever the choices before send it)."""
    return _mkl_unit_levels(choice, clock, scale, 1, "MKL_UNITS_UNSPLIT_MIN_BYTES")


def mkl_rows(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MKL_ROWS_MIN_BYTES``: a training call (T = 20, 10 batch rows per thread, H = I as
    listed; its quantity the recurrent weight's bytes, ``16 H^2``) as a layer runs it,
    each step's products on oneMKL's packed GEMM or on the paths the choices before send
    it to. Each call packs the weights twice (forward and backward, ~8 ms each at H =
    1024 on a 2-core Intel Xeon): at 10 steps that cost alone turned H = 768..1024
    against the path, at 20 to 50 steps it is a few per cent of the call."""
    if _blas.MKL is None or not _mkl_units.AVAILABLE:
        return [], "oneMKL's packed GEMM not installed (the mkl extra): kioku's own kernel"
    levels = []
    batch = 10 * _probe_threads()
    steps = max(_mkl_units.MIN_STEPS, _steps(20, scale))  # shorter calls keep kioku's kernel
    for hidden in choice.candidates:
        shape = (steps, batch, int(hidden))
        on = _with({"MKL_ROWS_MIN_BYTES": (numba_lstm, 0)}, _planned_training(*shape))
        off = _with({"MKL_ROWS_MIN_BYTES": (numba_lstm, NO_LIMIT)}, _planned_training(*shape))
        levels.append(_compare(clock, 16 * int(hidden) ** 2, on, off))
    return levels, None


def mkl_gemm(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MKL_MIN_MNK``: an output layer's three products (``y (T B, H) @ W.T`` with ``W
    (V, H)``, the weight's gradient ``dz.T @ y``, the input's ``dz @ W``: NT, TN and NN)
    at ``T B = 320``, ``H = 128`` and ``V`` as listed (quantity ``M N K = T B H V``), on
    the calling thread with one BLAS thread, on oneMKL or on OpenBLAS."""
    if _blas.MKL is None:
        return [], "oneMKL not installed (the mkl extra): OpenBLAS for every product"
    rows, hidden = max(32, int(320 * min(scale, 1.0))), 128
    rng = np.random.default_rng(4)
    y = rng.standard_normal((rows, hidden)).astype(np.float32)
    levels = []
    for outputs in choice.candidates:
        w = rng.standard_normal((int(outputs), hidden)).astype(np.float32)
        dz = rng.standard_normal((rows, int(outputs))).astype(np.float32)
        z, dw, dy = np.empty_like(dz), np.empty_like(w), np.empty_like(y)

        def products(part: int, w=w, dz=dz, z=z, dw=dw, dy=dy) -> None:
            _gemm.gemm(False, True, y, w, z, 0.0)
            _gemm.gemm(True, False, dz, y, dw, 0.0)
            _gemm.gemm(False, False, dz, w, dy, 0.0)

        def one_thread(products=products) -> None:  # OpenBLAS held to one thread
            _threads.run_parts(products, 1, single_blas=True)

        mnk = float(rows * hidden * int(outputs))
        on = _with({"MKL_MIN_MNK": (_gemm, 0)}, one_thread)
        off = _with({"MKL_MIN_MNK": (_gemm, NO_LIMIT)}, one_thread)
        levels.append(_compare(clock, mnk, on, off))
    return levels, None
