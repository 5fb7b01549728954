"""Handing a part of a call to a worker thread that spins before it sleeps.

A worker that sleeps on a queue (``ThreadPoolExecutor``) takes ~30 µs to start after
the caller submits a part, and the caller as long again to wake when the part is done:
on this project's 2-core machines (KVM guests) a futex wake of an idle vCPU goes through
the hypervisor. At (35, 20, 200) inference both cost ~3 % of a 2.3 ms call. Here the
worker, after each part, watches a flag for :data:`SPIN_LOOPS` loads (~0.2 ms) in
compiled code, without the GIL, before it sleeps on a semaphore; the caller waits for
the part the same way, so a call that follows another within that time hands over in
~2 µs each way. The flags are read and written with sequentially consistent atomics
(an LLVM intrinsic: a plain load in a loop may be hoisted out of it), which makes the
sleep hand-shake safe: the worker publishes that it sleeps and then re-reads the
go flag, the caller publishes go and then reads whether the worker sleeps, so at least
one of them sees the other.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np

try:  # the `fast` extra; without it there is no spinning worker (claim() returns None)
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    from ._jit import njit
except ImportError:
    AVAILABLE = False
else:
    AVAILABLE = True

# ~0.55 ns a load on the machine this was measured on: about 0.2 ms of spinning before
# the worker sleeps, longer than the Python between two back-to-back calls (~30 µs)
SPIN_LOOPS = 400_000
# the caller spins this long (~1 ms) for the worker's part, then sleeps on an event
WAIT_LOOPS = 2_000_000

# After the flag it waits for changes, a thread keeps spinning this long (~10 µs) before
# it takes the GIL back: the other thread holds it for a few µs more (until its own part
# enters compiled code, or until the worker is back in its spin), and a thread that asks
# for a held GIL sleeps and is woken as slowly as from a queue (~30 µs)
LINGER_LOOPS = 20_000
# The worker's linger after a part is handed to it (~20 µs): the caller, who holds the GIL
# when it hands over, takes a few µs more (its own part's dispatch) to release it; asked
# for sooner, the GIL put the worker to sleep and woke it ~30 µs later. (35, 20, 200)
# inference, median of 300 calls: the worker's part started 13-36 µs after the caller's
# call with 20,000 loads, 9 µs with 40,000 (two processes each).
GO_LINGER_LOOPS = 40_000

GO, DONE, SLEEPING = 0, 1, 2  # the flags' slots


if AVAILABLE:  # compiled only where Numba imports

    @intrinsic
    def _atomic_load(typingctx, flags, slot):
        """``flags[slot]`` (int64) as a sequentially consistent atomic load."""

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(
                context, builder, signature.args[0], array, [args[1]]
            )
            return builder.load_atomic(pointer, "seq_cst", 8)

        return types.int64(flags, slot), codegen

    @intrinsic
    def _atomic_store(typingctx, flags, slot, value):
        """``flags[slot] = value`` (int64) as a sequentially consistent atomic store."""

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(
                context, builder, signature.args[0], array, [args[1]]
            )
            builder.store_atomic(args[2], pointer, "seq_cst", 8)
            return context.get_dummy_value()

        return types.void(flags, slot, value), codegen

    @njit(cache=True, nogil=True)
    def spin_until_changed(flags, slot, old, loops, linger):
        """``flags[slot]`` once it differs from ``old``, or ``old`` after ``loops`` loads.
        Without the GIL; once it changed, ``linger`` more loads before the GIL is taken back
        (see :data:`LINGER_LOOPS`)."""
        for _ in range(loops):
            value = _atomic_load(flags, slot)
            if value != old:
                for _ in range(linger):
                    _atomic_load(flags, slot)
                return value
        return old

    # load and store keep the GIL: releasing it for nanoseconds let the other thread take
    # it, and the releasing thread then slept until that one let go (~30 µs)
    @njit(cache=True)
    def load(flags, slot):
        """``flags[slot]``, atomically."""
        return _atomic_load(flags, slot)

    @njit(cache=True)
    def store(flags, slot, value):
        """``flags[slot] = value``, atomically."""
        _atomic_store(flags, slot, value)


class SpinWorker:
    """One worker thread that runs one part of a call at a time (see the module
    docstring). :meth:`run` is used by one caller at a time: claim ``lock`` first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.flags = np.zeros(3, np.int64)  # go, done, sleeping
        self.wake = threading.Semaphore(0)
        self.finished = threading.Event()
        self.task: Callable[[int], object] | None = None
        self.part = 0
        self.error: BaseException | None = None
        self.sequence = 0
        self.thread = threading.Thread(target=self._serve, name="kioku-spin", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        flags, last = self.flags, 0
        while True:
            go = spin_until_changed(flags, GO, last, SPIN_LOOPS, GO_LINGER_LOOPS)
            if go == last:  # nothing came: sleep, unless go moved while saying so
                store(flags, SLEEPING, 1)
                if load(flags, GO) == last:
                    self.wake.acquire()
                store(flags, SLEEPING, 0)
                continue
            last = go
            try:
                self.task(self.part)
            except BaseException as error:  # handed to the caller, raised there
                self.error = error
            self.finished.set()  # for a caller that stopped spinning
            store(flags, DONE, go)

    def run(self, task: Callable[[int], object], part: int, own: Callable[[], object]) -> None:
        """``task(part)`` on the worker while ``own()`` runs here; returns when both
        are done, raising the first exception of either."""
        flags = self.flags
        self.task, self.part, self.error = task, part, None
        self.finished.clear()
        self.sequence += 1
        store(flags, GO, self.sequence)
        if load(flags, SLEEPING):
            self.wake.release()
        try:
            own()
        finally:
            done = spin_until_changed(flags, DONE, self.sequence - 1, WAIT_LOOPS, LINGER_LOOPS)
            if done != self.sequence:
                self.finished.wait()
            self.task = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


_worker: SpinWorker | None = None
_worker_lock = threading.Lock()


def claim() -> SpinWorker | None:
    """The process's spinning worker, locked for the caller (release ``.lock`` after),
    or ``None`` when another call holds it or Numba is not installed (the caller then
    uses its thread pool)."""
    global _worker
    if not AVAILABLE:
        return None
    worker = _worker
    if worker is None:
        with _worker_lock:
            if _worker is None:
                _worker = SpinWorker()
            worker = _worker
    return worker if worker.lock.acquire(blocking=False) else None


def _forget_after_fork() -> None:
    global _worker
    _worker = None  # its thread does not exist in a child process


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
