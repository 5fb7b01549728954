"""How many threads one call uses, and running a compiled loop on slices of the batch.

Sequences in a batch never interact inside the recurrence, so each thread runs all T
steps on its own rows with single-threaded BLAS: no synchronisation per step (what
ONNX Runtime does). The GEMMs before and after the loop are split across the same
threads by rows of their outputs, again with single-threaded BLAS: OpenBLAS's own
worker threads keep spinning on a core for a while after each call, which would steal
it from the loops.

The rule lives in one function, :func:`plan`: by default a call may use every core this
process may run on (``os.sched_getaffinity``), as PyTorch and ONNX Runtime do;
``KIOKU_NUM_THREADS`` overrides that count. Within it the split is chosen per shape by
the constants below (the only knobs): their hand-set values are defaults, which
:mod:`._tuning` replaces with values measured on the machine that runs them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from . import _blas, _environ, _spin, _tuning

# Fewer batch rows per thread than this and a thread is not worth its wake-up: its GEMM
# per step gets too thin for BLAS to reach speed.
MIN_ROWS = _tuning.current("MIN_ROWS")  # by hand: 4
# Recurrent flops of one step of the whole batch (``8 B H P``, ``+ 8 B H P`` with a
# projection) below which one thread is faster than several: a step then lasts a few
# microseconds, and the threads' start and join cost more than they save.
MIN_FLOPS = _tuning.current("MIN_FLOPS")  # by hand: 4e6
# Recurrent flops of one step of one direction above which the two directions of a
# bidirectional layer are worth running on two threads at once (each with half the
# threads), instead of one after the other with the whole budget each. Below it a
# direction is too short to pay for a thread hand-off.
DIRECTIONS_MIN_FLOPS = _tuning.current("DIRECTIONS_MIN_FLOPS")  # by hand: 2e5
# Flops of one GEMM around a direction's loops (the input projection, ``2 T B 4H I``;
# each weight gradient is as big) from which those GEMMs split over every thread even
# where the loop itself runs on one (a batch too small to split): the loop is serial,
# the GEMMs are not.
GEMM_SPLIT_FLOPS = _tuning.current("GEMM_SPLIT_FLOPS")  # by hand: 2e7
# Recurrent flops of one step (``8 B H P``) from which a batch too small to split by rows
# splits each step by hidden units instead (kernels/_unit_split.py): below it a step is
# too short to pay for a barrier between the threads at every step.
UNITS_MIN_FLOPS = _tuning.current("UNITS_MIN_FLOPS")  # by hand: 1e6
# The same for inference, whose steps are shorter (no cache written) and whose batch-1
# calls have a loop of their own (kernels/_row_loop.py) to beat.
UNITS_INFER_MIN_FLOPS = _tuning.current("UNITS_INFER_MIN_FLOPS")  # by hand: 1e6
# The same for training calls of one sequence, whose unsplit steps run the one-row
# kernels on the whole recurrent weight: a split pays where that weight outgrows one
# core's cache and half of it does not, at fewer flops than at batch 2 (Zen 4, T = 50,
# training: at H = 256, 2.07 ms split against 2.40; at H = 192, 1.47 against 1.36).
UNITS_ROW_MIN_FLOPS = _tuning.current("UNITS_ROW_MIN_FLOPS")  # by hand: 1e6
# Flops of one GEMM around the loop (``8 T B H I``) from which a training call on one
# thread hands its weight gradients, a pass of steps at a time, to a second thread while
# its backward loop goes on (kernels/_entries.pipelined_backward): below it the hand-off
# costs what the overlap saves (Zen 4, batch 1, T = 48, a layer's whole step, medians of
# three processes: H = 64 0.88-1.09x, H = 128 1.11-1.21x).
PIPELINE_MIN_FLOPS = _tuning.current("PIPELINE_MIN_FLOPS")  # by hand: 4e6
# the split's barrier yields the core through the C library's sched_yield (POSIX)
_UNITS_PLATFORM = os.name == "posix"

# Two parts of an inference call go to a worker that spins ~0.2 ms before sleeping
# (kernels/_spin.py): from a queue a pool thread started ~30 µs late and woke the caller
# as late again. Not for training: kioku's PTB task ran 8-10 % slower with it (150
# steps, 2 threads, idle machine), the spinning worker taking a core from NumPy's GEMMs
SPIN_HANDOFF = True

_pool: ThreadPoolExecutor | None = None
_direction_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_budget = threading.local()  # a per-thread cap, set while running one of two directions
_depth = threading.local()  # how deep in kernel calls this thread is


_num_threads_variable = _environ.reader("KIOKU_NUM_THREADS")  # read on every call


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """Threads one call may use: ``KIOKU_NUM_THREADS`` when set, else :func:`usable_cores`
    (divided between the two directions while they run concurrently)."""
    env = _num_threads_variable()
    if env:
        count = int(env) if env.strip().isdigit() else 0
        if count < 1:
            raise ValueError(f"KIOKU_NUM_THREADS: expected a positive integer, found {env!r}")
    else:
        count = usable_cores()
    cap = getattr(_budget, "cap", None)
    return count if cap is None else max(1, min(count, cap))


class ThreadPlan(NamedTuple):
    """``batch_threads``: threads that split the batch of one direction;
    ``parallel_directions``: whether the two directions run at the same time."""

    batch_threads: int
    parallel_directions: bool


def plan(
    batch: int, step_flops: float, directions: int = 1, threads: int | None = None
) -> ThreadPlan:
    """The split for one direction's call: ``batch`` rows, ``step_flops`` recurrent flops
    of one step of the whole batch (one direction), ``directions`` 1 or 2, ``threads`` the
    budget (default :func:`max_threads`).

    The rule, in order:
    1. two directions and at least two threads and ``step_flops >= DIRECTIONS_MIN_FLOPS``:
       the directions run concurrently, each with half the budget;
    2. the batch splits into ``min(budget, batch // MIN_ROWS)`` slices when
       ``step_flops >= MIN_FLOPS``;
    3. otherwise one thread.

    Work below both thresholds takes one thread whatever the budget, without reading
    it (no environment or affinity look-up in the calls where a microsecond counts).
    """
    if threads is None and step_flops < MIN_FLOPS and step_flops < DIRECTIONS_MIN_FLOPS:
        return ThreadPlan(1, False)
    budget = max_threads() if threads is None else threads
    if budget < 1:
        raise ValueError(f"threads: expected a positive integer, found {budget}")
    parallel = directions == 2 and budget >= 2 and step_flops >= DIRECTIONS_MIN_FLOPS
    if parallel:
        budget //= 2
    split = min(budget, batch // MIN_ROWS) if step_flops >= MIN_FLOPS else 1
    return ThreadPlan(max(split, 1), parallel)


def gemm_threads(loop_parts: int, gemm_flops: float) -> int:
    """Threads for the GEMMs around a loop that runs on ``loop_parts`` threads, each GEMM
    of ``gemm_flops``: every thread of the budget from :data:`GEMM_SPLIT_FLOPS` on,
    else ``loop_parts`` (no budget read below it)."""
    if gemm_flops < GEMM_SPLIT_FLOPS:
        return loop_parts
    return max(loop_parts, max_threads())


def unit_threads(step_flops: float, most: int, training: bool, rows: int = 2) -> int:
    """Threads that split each step of an unsplit batch of ``rows`` by hidden units, at most
    ``most`` (the units' panels): every thread of the budget from :data:`UNITS_MIN_FLOPS`
    (``training``; :data:`UNITS_ROW_MIN_FLOPS` for one row) or
    :data:`UNITS_INFER_MIN_FLOPS` on, else 1 (no budget read below)."""
    if training:
        least = UNITS_ROW_MIN_FLOPS if rows == 1 else UNITS_MIN_FLOPS
    else:
        least = UNITS_INFER_MIN_FLOPS
    if step_flops < least or most < 2 or not _UNITS_PLATFORM:
        return 1
    return max(1, min(max_threads(), most))


def batch_slices(batch: int, step_flops: float) -> list[slice]:
    """Split ``batch`` rows into contiguous slices, one per thread :func:`plan` chooses."""
    threads = plan(batch, step_flops).batch_threads
    if threads == 1:
        return [slice(0, batch)]
    bounds = [round(k * batch / threads) for k in range(threads + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(threads)]


def _single_blas_thread(task: Callable[[int], object], part: int) -> None:
    _blas.set_threads_this_thread(1)
    task(part)


@contextlib.contextmanager
def _caller_blas_restored() -> Iterator[None]:
    """Give the calling thread its BLAS thread count back when its outermost kernel call
    ends. Not "the previous count": OpenBLAS's "local" setting leaks between threads (a
    worker's 1 was read back as the caller's previous value), which left NumPy on one
    thread after every LSTM call; kioku's own worker threads keep their 1."""
    depth = getattr(_depth, "value", 0)
    _depth.value = depth + 1
    try:
        yield
    finally:
        _depth.value = depth
        own = threading.current_thread().name.startswith("kioku")
        default = _blas.DEFAULT_THREADS
        # only where the call changed it: even setting the same count is a global write
        if depth == 0 and not own and default and _blas.current_threads() != default:
            _blas.set_threads_this_thread(default)


def run_parts(
    task: Callable[[int], object], parts: int, single_blas: bool = True, spin: bool = False
) -> None:
    """Run ``task(k)`` for ``k`` in ``range(parts)``: part 0 here, the others on worker
    threads (the compiled loops release the GIL), with single-threaded BLAS when
    ``single_blas`` (else BLAS left as it is: for tasks whose GEMMs OpenBLAS would run
    on the calling thread anyway). With ``spin`` two parts go to :mod:`._spin`'s worker
    (inference: the worker then spins ~0.2 ms for the next call, which training's NumPy
    work between kernel calls would lose its second core to). Exceptions propagate."""
    global _pool
    if parts == 1 and not single_blas:
        task(0)
        return
    guard = _caller_blas_restored() if single_blas else contextlib.nullcontext()
    run = functools.partial(_single_blas_thread, task) if single_blas else task
    with guard:
        if parts == 1:
            run(0)
            return
        if parts == 2 and spin and SPIN_HANDOFF:
            worker = _spin.claim()
            if worker is not None:
                try:
                    worker.run(run, 1, lambda: run(0))
                finally:
                    worker.lock.release()
                return
        with _pool_lock:
            if _pool is None or _pool._max_workers < parts - 1:
                # room for every core: two directions running at once share this pool
                workers = max(parts - 1, usable_cores())
                _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kioku")
        futures = [_pool.submit(run, k) for k in range(1, parts)]
        run(0)
        for future in futures:
            future.result()


# OpenBLAS runs a GEMM with M * N * K up to 65536 * GEMM_MULTITHREAD_THRESHOLD (4 by
# default; interface/gemm.c) on the calling thread whatever its thread count, so a call
# whose BLAS GEMMs are all that small leaves the count alone: each switch is a global
# change in OpenBLAS (its "thread-local" count leaks between threads), and switching
# back and forth around every call measurably slowed the NumPy GEMMs between calls.
SOLO_GEMM_MNK = 65536 * 4


# A layer's own GEMMs (an output Linear's, kernels/_split_gemm.py) with M * N * K up to
# this run whole on the calling thread, on one OpenBLAS thread; bigger ones split over
# kioku's threads. Never on OpenBLAS's own threads: those spin on a core for ~0.1 s after
# each product, which the kernels' threads need next. Tuned on a whole training step
# (kernels/_tuning_probes.small_gemm): timed alone, more threads win the product, and a
# threshold chosen that way (1e6 on an AMD EPYC, threaded by OpenBLAS) made the word
# tagger's training 35 % slower than 16e6.
SMALL_GEMM_MNK = _tuning.current("SMALL_GEMM_MNK")  # by hand: 16e6


@contextlib.contextmanager
def small_gemm_threads(mnk: float) -> Iterator[None]:
    """Around NumPy GEMMs of ``mnk = M * N * K``: OpenBLAS held to one thread when the
    product is above what OpenBLAS keeps on one thread anyway and at most
    :data:`SMALL_GEMM_MNK`; the caller's count given back after."""
    default = _blas.DEFAULT_THREADS
    if not (SOLO_GEMM_MNK < mnk <= SMALL_GEMM_MNK) or not default or default == 1:
        yield
        return
    with _caller_blas_restored():
        _blas.set_threads_this_thread(1)
        yield


# NumPy work on the rows of a big array (a loss's logits): blocks of about this many
# bytes, so that the several passes over a block stay in cache; split over every thread
# from two blocks on, where each thread gets a block or more and its hand-off (~50 µs)
# is a few per cent of the work. Cache sizes, not a crossover fitted to one CPU.
ROW_BLOCK_BYTES = 1 << 21


def over_rows(task: Callable[[int, int], object], rows: int, row_bytes: int) -> None:
    """``task(r0, r1)`` on consecutive blocks of ``range(rows)`` of about
    :data:`ROW_BLOCK_BYTES` (``row_bytes`` each row), in order within a thread; from two
    blocks on the rows split into one contiguous share per thread (NumPy releases the
    GIL in its loops, so the shares run at once). Exceptions propagate."""
    per_block = max(1, ROW_BLOCK_BYTES // max(1, row_bytes))
    parts = 1 if rows < 2 * per_block else max(1, min(max_threads(), rows // per_block))

    def share(part: int) -> None:
        first, last = rows * part // parts, rows * (part + 1) // parts
        for start in range(first, last, per_block):
            task(start, min(last, start + per_block))

    run_parts(share, parts, single_blas=False)


def in_phases(
    parts: int,
    first: Callable[[int], object],
    second: Callable[[int], object],
    blas_mnk: float = float("inf"),
    second_parts: int | None = None,
) -> None:
    """``first(k)`` for ``k`` in ``range(parts)``, then ``second(k)`` for ``k`` in
    ``range(second_parts)`` (default ``parts``), each part on its own thread: both phases
    in one task where each has one part, or two parts each (the parts then meet at a
    spinning barrier between the phases: one hand-off to the pool instead of two, ~50 µs
    each on this project's KVM guests), otherwise one :func:`run_parts` per phase.
    ``blas_mnk``: ``M * N * K`` of the largest BLAS GEMM the phases make (0 if none);
    at least :data:`SOLO_GEMM_MNK` and BLAS is held to one thread per part (OpenBLAS's own
    workers would keep spinning on a core after their call and steal it from the loops)."""
    single_blas = blas_mnk > SOLO_GEMM_MNK
    second_parts = parts if second_parts is None else second_parts
    if parts == 1 and second_parts == 1 and not single_blas:  # batch 1: nothing to set up
        first(0)
        second(0)
    elif parts == 1 and second_parts == 1:
        run_parts(lambda part: (first(part), second(part)), 1, single_blas)
    elif parts == second_parts == 2:
        # Two parts only: the pool part waits for nothing but the caller's own part, so
        # the barrier cannot wait on a task queued behind another call's.
        run_parts(_met_at_barrier(first, second, parts), parts, single_blas)
    else:
        run_parts(first, parts, single_blas)
        run_parts(second, second_parts, single_blas)


def _met_at_barrier(
    first: Callable[[int], object], second: Callable[[int], object], parts: int
) -> Callable[[int], None]:
    """A task ``k`` that runs ``first(k)``, waits (spinning, without the GIL) until every
    part has run its ``first``, then runs ``second(k)``; a part that fails releases the
    others, which then skip ``second`` (the failure propagates from its part)."""
    from ._spin import load  # the compiled backends' helpers: Numba is installed here
    from ._unit_split import PAD, abort, barrier, counters

    progress = counters(parts)

    def task(part: int) -> None:
        try:
            first(part)
        except BaseException:
            abort(progress)
            raise
        barrier(progress, part, parts, 1)
        if load(progress, parts * PAD) == 0:
            second(part)

    return task


def _with_cap(task: Callable[[], object], cap: int) -> object:
    _budget.cap = cap
    try:
        return task()
    finally:
        _budget.cap = None


def run_directions(
    tasks: Sequence[Callable[[], object]], parallel: bool, spin: bool = False
) -> list[object]:
    """Run the two directions of a layer (``tasks``, each a zero-argument call of one
    direction's kernel): at the same time, each capped at half of :func:`max_threads`,
    when ``parallel`` (see :func:`plan`), else one after the other. Results in order;
    exceptions propagate. The kernels release the GIL, so the directions overlap. With
    ``spin`` (inference) the second direction goes to :mod:`._spin`'s worker when it is
    free, as :func:`run_parts` hands over a second part."""
    if not parallel or len(tasks) == 1:
        return [task() for task in tasks]
    with _caller_blas_restored():
        return _run_side_by_side(tasks, spin)


def _run_side_by_side(tasks: Sequence[Callable[[], object]], spin: bool) -> list[object]:
    global _direction_pool
    cap = max(1, max_threads() // len(tasks))
    if spin and SPIN_HANDOFF and len(tasks) == 2:
        worker = _spin.claim()
        if worker is not None:
            results: list[object] = [None, None]

            def direction(k: int) -> None:
                results[k] = _with_cap(tasks[k], cap)

            try:
                worker.run(direction, 1, lambda: direction(0))
            finally:
                worker.lock.release()
            return results
    with _pool_lock:
        if _direction_pool is None or _direction_pool._max_workers < len(tasks) - 1:
            # its own pool: the batch-split tasks these directions submit to _pool must
            # never queue behind the directions themselves
            _direction_pool = ThreadPoolExecutor(
                max_workers=len(tasks) - 1, thread_name_prefix="kioku-direction"
            )
    futures = [_direction_pool.submit(_with_cap, task, cap) for task in tasks[1:]]
    results = [_with_cap(tasks[0], cap)]
    results += [future.result() for future in futures]
    return results
