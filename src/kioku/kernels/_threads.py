"""Running a compiled time loop on slices of the batch, one slice per core.

Sequences in a batch never interact inside the recurrence, so each thread runs all T
steps on its own rows with single-threaded BLAS: no synchronisation per step (what
ONNX Runtime does), and no BLAS worker threads that spin or wait for a core another
process has taken. The GEMMs before and after the loop are split across the same
threads by rows of their outputs, again with single-threaded BLAS: OpenBLAS's own
worker threads keep spinning on a core for a while after each call, which would steal
it from the loops. ``KIOKU_NUM_THREADS`` sets the most threads a call may use.

The default is 1: on the shared 2-core machine this was developed on (load average
3-7 from other jobs) one thread was as fast or faster than two in every paired
measurement (docs/performance.md), because a split call waits for whichever thread the
scheduler has just taken off its core. On a dedicated machine, ``KIOKU_NUM_THREADS=2``
(or the number of cores) lets the batch split use them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from . import _blas

MIN_ROWS = 4  # fewer rows per thread than this and a thread is not worth its wake-up
MIN_FLOPS = 4e6  # per-step work below which one thread is faster than two

_pool: ThreadPoolExecutor | None = None


def max_threads() -> int:
    """Threads a loop may use: ``KIOKU_NUM_THREADS`` (default 1, at most the usable cores
    are worth asking for)."""
    env = os.environ.get("KIOKU_NUM_THREADS")
    if env:
        count = int(env) if env.strip().isdigit() else 0
        if count < 1:
            raise ValueError(f"KIOKU_NUM_THREADS: expected a positive integer, found {env!r}")
        return count
    return DEFAULT_THREADS


DEFAULT_THREADS = 1


def batch_slices(batch: int, step_flops: float) -> list[slice]:
    """Split ``batch`` rows into contiguous slices, one per thread worth starting."""
    threads = min(max_threads(), batch // MIN_ROWS)
    if step_flops < MIN_FLOPS:
        threads = 1
    threads = max(threads, 1)
    bounds = [round(k * batch / threads) for k in range(threads + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(threads)]


def _single_blas_thread(task: Callable[[int], object], part: int) -> None:
    previous = _blas.set_threads_this_thread(1)
    try:
        task(part)
    finally:
        if previous is not False:
            _blas.set_threads_this_thread(previous)


def run_parts(task: Callable[[int], object], parts: int) -> None:
    """Run ``task(k)`` for ``k`` in ``range(parts)``: part 0 here, the others on worker
    threads (the compiled loops release the GIL), all with single-threaded BLAS.
    Exceptions propagate."""
    global _pool
    if parts == 1:
        _single_blas_thread(task, 0)
        return
    if _pool is None or _pool._max_workers < parts - 1:
        _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="kioku")
    futures = [_pool.submit(_single_blas_thread, task, k) for k in range(1, parts)]
    _single_blas_thread(task, 0)
    for future in futures:
        future.result()
