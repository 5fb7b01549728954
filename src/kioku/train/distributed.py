"""Data-parallel training over MPI: one model, each global batch split across processes.

Under ``mpiexec -n N`` every process (rank) builds the same run; rank 0's parameters are
broadcast at the start, each rank runs forward and backward on its slice of every
global batch, and one ``Allreduce`` of one flat buffer per step sums the gradients
(weighted by each rank's share of the batch's loss count), the loss and the token
count. Every rank then takes the same optimizer step, so the run equals one process's
at the same global batch up to the order of floating-point sums. Per-example dropout
masks come from a draw for the whole global batch (:mod:`kioku.nn.batch_shard`), so
they do not depend on which rank holds the example.

Without mpi4py, or outside ``mpiexec``, :func:`communicator` gives a single-process
:class:`Communicator` whose collectives are no-ops: nothing changes.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..nn.batch_shard import batch_shard
from ..nn.module import Module, parameters_changed

# set by the common launchers (MPICH/Hydra, Open MPI, Slurm's PMI) in every rank
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
# seconds a failing rank waits between printing its traceback and aborting every rank
ABORT_GRACE_S = 0.5


class Communicator:
    """One process alone: rank 0 of 1, collectives that change nothing."""

    rank = 0
    size = 1

    def allreduce(self, buffer: np.ndarray) -> None:
        """Sum ``buffer (n,)`` (contiguous float) over all ranks, in place."""

    def broadcast(self, buffer: np.ndarray) -> None:
        """Overwrite ``buffer (n,)`` (contiguous) with rank 0's, in place."""

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def abort(self, code: int = 1) -> None:
        """End every rank now with exit status ``code``."""
        os._exit(code)


class MPICommunicator(Communicator):
    """``MPI.COMM_WORLD`` through mpi4py's buffer interface (no pickling)."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self.mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allreduce(self, buffer: np.ndarray) -> None:
        self.comm.Allreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM)

    def broadcast(self, buffer: np.ndarray) -> None:
        self.comm.Bcast(buffer, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def under_mpiexec(environ: dict[str, str] | None = None) -> bool:
    """Whether an MPI launcher started this process (its variables are set)."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in _LAUNCHER_VARIABLES)


_WORLD: Communicator | None = None


def communicator() -> Communicator:
    """The world communicator: MPI's under ``mpiexec`` with mpi4py installed, else the
    single-process one. MPI is initialised once, on the first call."""
    global _WORLD
    if _WORLD is None:
        _WORLD = Communicator()
        if under_mpiexec():
            try:
                from mpi4py import MPI
            except ImportError:
                pass  # mpiexec without mpi4py: each process trains alone, as before
            else:
                if MPI.COMM_WORLD.Get_size() > 1:
                    _WORLD = MPICommunicator(MPI.COMM_WORLD)
                    install_abort_on_error(_WORLD)
    return _WORLD


def install_abort_on_error(comm: Communicator) -> None:
    """An uncaught exception on any rank prints its traceback, prefixed by the rank, and
    aborts every rank: the others may be waiting in a collective that would never end."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):  # a second Ctrl-C: no traceback needed
            previous(kind, value, tb)
            comm.abort(130)
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write("".join(f"rank {comm.rank}: {line}\n" for line in text.splitlines()))
        sys.stderr.flush()
        # the launcher forwards this rank's stderr through a pipe: aborting at once could
        # end it before it read the traceback (seen once under a full test suite's load)
        time.sleep(ABORT_GRACE_S)
        comm.abort(1)

    sys.excepthook = hook


def shard_range(total: int, rank: int, size: int) -> tuple[int, int]:
    """Examples ``start:stop`` of ``total`` that ``rank`` of ``size`` holds: contiguous
    slices whose sizes differ by at most one, lower ranks taking the larger ones."""
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"rank, size: expected 0 <= rank < size, found {rank}, {size}")
    base, extra = divmod(int(total), size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def take(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Examples ``start:stop`` of a batch array: axis 1 of time-major ``(T, B, ...)``,
    axis 0 of per-example ``(B,)``."""
    return array[start:stop] if array.ndim == 1 else array[:, start:stop]


class DataParallel:
    """How one rank takes part in a data-parallel run over ``comm``.

    A task asks :meth:`local` for its slice of each global batch and runs its model
    inside :meth:`shard`; the trainer calls :meth:`reduce` after backward. ``share`` is
    the fraction of the global batch's loss count that this rank's slice holds, set by
    the task each step. ``allreduce_seconds`` and ``steps`` accumulate the time spent in
    the gradient ``Allreduce`` (the wait for the slowest rank included)."""

    def __init__(self, comm: Communicator | None = None) -> None:
        self.comm = comm or communicator()
        self.rank, self.size = self.comm.rank, self.comm.size
        self.share = 1.0
        self.allreduce_seconds = 0.0
        self.steps = 0
        self._buffer: np.ndarray | None = None
        self._bound: tuple[Module, list[np.ndarray]] | None = None  # see bind_gradients

    def bind_gradients(self, model: Module) -> None:
        """Make every gradient of ``model`` a view into the head of one flat buffer, so
        that :meth:`reduce` scales and reduces them where they are, with no copy in or
        out. Call it before building the optimizer (which holds the gradient arrays);
        gradients of mixed dtypes stay as they are."""
        if not self.active:
            return
        grads = [g for _, g in params_and_grads(model)]
        if len({g.dtype for g in grads}) != 1:
            return
        total = sum(g.size for g in grads)
        arena = np.zeros(total + _SPARE, dtype=grads[0].dtype)
        views, offset = {}, 0
        for g in grads:
            view = arena[offset : offset + g.size].reshape(g.shape)
            view[...] = g
            views[id(g)] = view
            offset += g.size
        for module in _modules(model):
            for name, grad in module.grads.items():
                module.grads[name] = views[id(grad)]
        self._buffer = arena
        self._bound = (model, [g for _, g in params_and_grads(model)])

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- batches ------------------------------------------------------------------------
    def bounds(self, total: int) -> tuple[int, int, float]:
        """``(start, stop, weight)`` of this rank's slice of ``total`` examples. A rank
        left without examples (``total < size``) runs the last one with weight 0, so that
        its dropout generators advance like every other rank's."""
        start, stop = shard_range(total, self.rank, self.size)
        if start == stop:
            return total - 1, total, 0.0
        return start, stop, 1.0

    @contextmanager
    def shard(self, total: int) -> Iterator[tuple[int, int, float]]:
        """Runs the block with per-example noise drawn for the global batch of ``total``
        (see :mod:`kioku.nn.batch_shard`); yields :meth:`bounds`."""
        start, stop, weight = self.bounds(total)
        if not self.active:
            yield start, stop, weight
            return
        with batch_shard(start, stop, total):
            yield start, stop, weight

    def local(self, batch: tuple, total: int) -> tuple:
        """This rank's slice of every array in ``batch`` (``None`` stays ``None``)."""
        if not self.active:
            return batch
        start, stop, _ = self.bounds(total)
        return tuple(None if a is None else take(a, start, stop) for a in batch)

    # -- collectives --------------------------------------------------------------------
    def reduce(
        self, model: Module, loss: float, tokens: int, extra: tuple[float, ...] = ()
    ) -> tuple[float, int, np.ndarray]:
        """Sum ``share``-weighted gradients, losses and token counts over ranks with one
        Allreduce (plus ``extra`` flags, summed); every rank's gradients become the
        global batch's. Returns ``(global mean loss, global tokens, summed extra)``."""
        if not self.active:
            return loss, tokens, np.asarray(extra, dtype=np.float64)
        grads = [g for _, g in params_and_grads(model)]
        count = sum(g.size for g in grads)
        size = count + 2 + len(extra)
        bound = self._bound is not None and self._bound[0] is model and len(extra) <= _SPARE - 2
        if bound:  # the gradients already are the buffer's head (if nothing rebound them)
            bound = len(grads) == len(self._bound[1]) and all(
                g is mine for g, mine in zip(grads, self._bound[1])
            )
        if bound:
            buffer = self._buffer[:size]
            buffer[:count] *= self.share
        else:
            dtype = np.result_type(*grads) if grads else np.float64
            if self._buffer is None or self._buffer.size != size or self._buffer.dtype != dtype:
                self._buffer, self._bound = np.empty(size, dtype=dtype), None
            buffer, offset = self._buffer, 0
            for g in grads:
                np.multiply(g.ravel(), self.share, out=buffer[offset : offset + g.size])
                offset += g.size
        buffer[count:] = (loss * self.share, tokens, *extra)
        started = time.perf_counter()
        self.comm.allreduce(buffer)
        self.allreduce_seconds += time.perf_counter() - started
        self.steps += 1
        if not bound:
            offset = 0
            for g in grads:
                g[...] = buffer[offset : offset + g.size].reshape(g.shape)
                offset += g.size
        tail = buffer[count:].astype(np.float64)
        return float(tail[0]), int(round(tail[1])), tail[2:]

    def sum(self, values: list[float] | tuple[float, ...]) -> list[float]:
        """``values`` summed over ranks (float64)."""
        if not self.active:
            return [float(v) for v in values]
        buffer = np.array(values, dtype=np.float64)
        self.comm.allreduce(buffer)
        return buffer.tolist()

    def broadcast_parameters(self, model: Module) -> None:
        """Every rank's parameters become rank 0's (one Bcast of one flat buffer)."""
        if not self.active:
            return
        arrays = [p for _, p in params_and_grads(model, grads=False)]
        for dtype in sorted({a.dtype.str for a in arrays}):
            group = [a for a in arrays if a.dtype.str == dtype]
            flat = np.concatenate([a.ravel() for a in group])
            self.comm.broadcast(flat)
            offset = 0
            for a in group:
                a[...] = flat[offset : offset + a.size].reshape(a.shape)
                offset += a.size
        parameters_changed()

    def gather_batch(self, local: np.ndarray, total: int) -> np.ndarray:
        """The global ``(T, total, ...)`` array whose slices the ranks hold as ``local``
        (an Allreduce of zeros around each rank's slice: exact, since x + 0 = x)."""
        if not self.active:
            return local
        start, stop, weight = self.bounds(total)
        shape = list(local.shape)
        shape[1] = total
        full = np.zeros(shape, dtype=local.dtype)
        if weight:
            full[:, start:stop] = local
        self.comm.allreduce(full.reshape(-1))
        return full

    def barrier(self) -> None:
        self.comm.barrier()

    def report(self) -> dict[str, float]:
        """Allreduce time: total seconds, steps, mean milliseconds per step."""
        per_step = 1000 * self.allreduce_seconds / self.steps if self.steps else 0.0
        return {
            "ranks": self.size,
            "allreduce_s": round(self.allreduce_seconds, 4),
            "allreduce_ms_per_step": round(per_step, 3),
        }


_SPARE = 8  # buffer slots after the gradients: loss, tokens and the trainer's flags


def _modules(module: Module) -> Iterator[Module]:
    """``module`` and every module below it."""
    yield module
    for child in module._children.values():
        yield from _modules(child)


def params_and_grads(model: Module, grads: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(parameter, gradient)`` pairs in a fixed order, each array once (tied weights
    share one); ``grads=False``: ``(parameter, parameter)``."""
    seen: set[int] = set()
    pairs = []
    for param, grad in model.parameters():
        key = id(grad) if grads else id(param)
        if key in seen:
            continue
        seen.add(key)
        pairs.append((param, grad if grads else param))
    return pairs


def quiet_unless_root(parallel: DataParallel, stream: Any) -> Any:
    """``stream`` on rank 0, a sink on the others (logs and progress are rank 0's)."""
    return stream if parallel.is_root else open(os.devnull, "w")  # noqa: SIM115


SINGLE_PROCESS = DataParallel(Communicator())
"""A task's part when no trainer has given it one: the whole batch, no collectives."""
