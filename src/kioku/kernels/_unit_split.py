"""One LSTM direction's time loops split over threads by hidden units, for batches too
small to split by rows.

A batch of 4 rows at H = 256 cannot be split by rows (each thread's GEMM of one step
would be too thin), so its loop ran on one thread while the second core waited. Here
each of ``parts`` threads owns a range of hidden units in every step: it computes the
four gates of its units (both products in one pass, from the weights packed in gate
order: :func:`~kioku.kernels._tiles.pair_step`), their cells and hidden
states, and then waits at a barrier until every thread has finished the step, since
the next step's product reads the whole hidden state. The backward splits the same way:
each thread the gate gradients of its units, a barrier, then its units' columns of
``dh = dgates @ weight_hh``. One barrier per step: every step writes its own slot of the
state (``h_state[t]``, ``y[t]``, ``dgates[t]``), so no thread overwrites what another
still reads. What PyTorch gets from a threaded BLAS call per step, without the call.

The barrier is a per-thread step counter (one 64-byte line each) stored and read with
sequentially consistent atomics (:mod:`._spin`'s); a thread that has spun
:data:`SPINS_BEFORE_YIELD` loads gives its core away (``sched_yield``) between loads, so
a machine with more runnable threads than cores still makes progress. float32, packed
weights, no projection, every step of every sequence valid (the path's ``unit_parts``:
:mod:`._path`). Shapes and slots as in :mod:`._lstm_loops`.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._gate_order import GATE_UNITS
from ._jit import njit
from ._loop_gemms import _share
from ._packed import MR, NR
from ._primitives import FAST_MATH, gate_views, infer_cell_row, train_cell_row
from ._spin import _atomic_load, _atomic_store
from ._tiles import packed_product, pair_step

# int64 slots between two threads' counters: one 64-byte cache line each
PAD = 8
# loads of another thread's counter before each further load yields the core
SPINS_BEFORE_YIELD = 20_000


@intrinsic
def _sched_yield(typingctx):
    """``sched_yield()`` from the C library (the process's own symbol)."""

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


def counters(parts: int) -> np.ndarray:
    """The barrier's counters for ``parts`` threads, zero: ``((parts + 1) * PAD,)`` int64,
    the last line the abort flag (:func:`abort`)."""
    return np.zeros((parts + 1) * PAD, np.int64)


def abort(progress: np.ndarray) -> None:
    """Release every thread waiting at the barrier for good (a thread failed: the others
    must not wait for its steps)."""
    from ._spin import store

    store(progress, progress.shape[0] - PAD, 1)


@njit(cache=True, nogil=True)
def barrier(progress, part, parts, count):
    """Say that thread ``part`` has finished ``count`` steps, then wait until every one
    of the ``parts`` threads has (``progress`` from :func:`counters`), or until the abort
    flag is set."""
    _atomic_store(progress, part * PAD, count)
    stop = parts * PAD
    for other in range(parts):
        if other == part:
            continue
        spins = 0
        while _atomic_load(progress, other * PAD) < count:
            if _atomic_load(progress, stop) != 0:
                return
            spins += 1
            if spins > SPINS_BEFORE_YIELD:
                _sched_yield()


def split_task(kernel, args: tuple, parts: int):
    """The per-thread task ``task(part)`` that runs ``kernel(*args, part, parts,
    progress)`` with one barrier's counters shared by the ``parts`` threads, a failing part
    releasing the others from the barrier before its exception propagates (for
    :func:`run_split`, or for a phase of :func:`kioku.kernels._threads.in_phases`)."""
    progress = counters(parts)

    def part_task(part: int) -> None:
        try:
            kernel(*args, part, parts, progress)
        except BaseException:
            abort(progress)
            raise

    return part_task


def run_split(kernel, args: tuple, parts: int, spin: bool) -> None:
    """``kernel(*args, part, parts, progress)`` on ``parts`` threads
    (:func:`kioku.kernels._threads.run_parts`; ``spin`` as there): :func:`split_task`."""
    from ._threads import run_parts

    run_parts(split_task(kernel, args, parts), parts, False, spin)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_forward_units(
    x, panels_ih, panels, step_bias, gates, h_state, c_state, tanh_c, y, reverse, part, parts,
    progress,
):  # fmt: skip
    """Thread ``part`` of ``parts`` of a training forward: the recurrence in place over
    the gate-order panels ``part`` owns (an even share of ``panels.shape[0]``), as
    :func:`~kioku.kernels._lstm_loops.lstm_forward_loop` runs it fused, every sequence
    ``T`` long, no projection. ``x (T, B, I)``; ``panels_ih``/``panels`` ``weight_ih``
    and ``weight_hh`` packed in gate order; ``step_bias (4H,)``; fills ``gates (T, B,
    4H)`` (activated i, f, g, o), ``h_state``/``c_state (T+1, B, H)`` (initial state in
    slot ``T * reverse``), ``tanh_c (T, B, H)`` and ``y (T, B, H)``, each in this
    thread's units only."""
    T, B, G = gates.shape
    H = G // 4
    r = 1 if reverse else 0
    q0, q1 = _share(panels.shape[0], part, parts)
    u0, u1 = q0 * GATE_UNITS, min(H, q1 * GATE_UNITS)
    n = u1 - u0
    tile = np.empty((MR, NR), y.dtype)
    sb = step_bias[u0:]
    for s in range(T):
        t = T - 1 - s if reverse else s
        h_prev, c_prev = h_state[t + r], c_state[t + r]
        h_next, c_next = h_state[t + 1 - r], c_state[t + 1 - r]
        a = gates[t]
        pair_step(x[t], panels_ih, h_prev, panels, a, 0, B, tile, q0, q1)
        for b in range(B):  # each row from u0 on: an index from 0 lets it vectorise
            hn, yt = h_next[b, u0:], y[t, b, u0:]
            train_cell_row(a[b, u0:], sb, c_prev[b, u0:], c_next[b, u0:], tanh_c[t, b, u0:],
                           hn, n, H)  # fmt: skip
            for j in range(n):
                yt[j] = hn[j]
        barrier(progress, part, parts, s + 1)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_infer_units(
    x, panels_ih, panels, step_bias, scratch, h0, c, y, reverse, part, parts, progress
):  # fmt: skip
    """Thread ``part`` of ``parts`` of an inference call (no cache kept), split as
    :func:`lstm_forward_units`: ``scratch (1, B, 4H)`` one step's pre-activations
    (each thread writes its own units' columns), ``h0 (B, H)`` the initial hidden state
    (the final one on exit), ``c (B, H)`` the initial cell, updated in place to the
    final one; each step's hidden state is written to ``y[t] (T, B, H)`` and read back
    from there by the next."""
    T, B, _ = y.shape
    H = scratch.shape[2] // 4
    q0, q1 = _share(panels.shape[0], part, parts)
    u0, u1 = q0 * GATE_UNITS, min(H, q1 * GATE_UNITS)
    n = u1 - u0
    tile = np.empty((MR, NR), y.dtype)
    sb = step_bias[u0:]
    a = scratch[0]
    h_prev = h0
    for s in range(T):
        t = T - 1 - s if reverse else s
        h_next = y[t]
        pair_step(x[t], panels_ih, h_prev, panels, a, 0, B, tile, q0, q1)
        for b in range(B):  # from u0 on, as in lstm_forward_units
            infer_cell_row(a[b, u0:], sb, c[b, u0:], h_next[b, u0:], n, H)
        barrier(progress, part, parts, s + 1)
        h_prev = h_next
    for b in range(B):  # every step written: the final state, this thread's units
        for j in range(u0, u1):
            h0[b, j] = h_prev[b, j]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_backward_units(
    dy, gates, c_state, tanh_c, panels, dgates, dh, dc, reverse, part, parts, progress
):  # fmt: skip
    """Thread ``part`` of ``parts`` of backprop through time, every sequence ``T`` long, no
    projection: the units of ``part``'s share of the ``NR``-wide panels of ``panels``
    (``weight_hh (4H, H)`` packed by :func:`~kioku.kernels._packed.pack_panels`). Reads
    ``dy (T, B, H)`` and the forward's ``gates``, ``c_state``, ``tanh_c``; writes
    ``dgates (T, B, 4H)`` (its units' four gate columns); ``dh``/``dc (B, H)`` hold the
    final state's gradient on entry and the initial state's on exit (its units)."""
    T, B, G = dgates.shape
    H = G // 4
    r = 1 if reverse else 0
    one = dy.dtype.type(1)
    p0, p1 = _share(panels.shape[0], part, parts)
    j0, j1 = p0 * NR, min(H, p1 * NR)
    n = j1 - j0
    tile = np.empty((MR, NR), dy.dtype)
    for s in range(T):
        t = s if reverse else T - 1 - s
        c_prev = c_state[t + r]
        # from j0 on, as in lstm_forward_units. The same gate pass as lstm_backward_loop's,
        # written out here: shared as an inlined primitive (as the forward passes are) the
        # (35, 20, 200) backward measured ~2 % slower (6.13 against 6.00 ms, medians of
        # five pairs of processes, AMD EPYC, idle), so it stays in place in both
        for b in range(B):
            cp, tc = c_prev[b, j0:], tanh_c[t, b, j0:]
            dhb, dcb, dyb = dh[b, j0:], dc[b, j0:], dy[t, b, j0:]
            ri, rf, rg, ro = gate_views(gates[t, b, j0:], n, H)  # each gate its own view:
            di, df, dg, do = gate_views(dgates[t, b, j0:], n, H)  # vectorises (_primitives)
            for j in range(n):
                i, f, g, o = ri[j], rf[j], rg[j], ro[j]
                th = tc[j]
                dhj = dhb[j] + dyb[j]
                dcs = dcb[j] + dhj * o * (one - th * th)
                di[j] = dcs * g * i * (one - i)
                df[j] = dcs * cp[j] * f * (one - f)
                dg[j] = dcs * i * (one - g * g)
                do[j] = dhj * th * o * (one - o)
                dcb[j] = dcs * f
        barrier(progress, part, parts, s + 1)  # dgates[t] whole: every unit's gates
        packed_product(dgates[t], panels[p0:p1], dh[:, j0:j1], 0.0, tile)
