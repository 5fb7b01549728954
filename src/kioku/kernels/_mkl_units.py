"""Inference with the batch's steps split over threads by hidden units, each thread's
recurrent product on oneMKL's packed GEMM (the ``mkl`` extra).

Split by batch rows, each of two threads multiplies its 10 rows of a ``(20, 650)`` step
by the whole of ``weight_hh.T`` (6.8 MB, past a 2 MiB L2): both stream all of it from
the L3 every step. Split by hidden units, each thread multiplies every row by the
weights of its own units only, half as many bytes, and MKL's ``cblas_sgemm_compute``
reads them packed once (``cblas_sgemm_pack``) into the layout its kernel streams best.
On a 2-core Intel Xeon (Emerald Rapids class) two threads ran 35 such steps at 183
GFLOP/s split by units from MKL's packed copy, 141 by rows, against 157 and 134 on
kioku's own packed kernel (``benchmarks/results/intel-2core-2026-12-08``).

Each thread ``part`` owns the units ``offs[part]:offs[part + 1]`` (multiples of
:data:`ALIGN`): the rows of ``weight_hh`` for the four gates of those units, in gate
order (``i`` of its units, then ``f``, ``g``, ``o``), packed as MKL's ``B`` operand of
``h (B, H) @ w.T`` for this batch size. A step: its product into its own scratch, the
gate pass over its units reading the input projection (made before the loop, over all
``T B`` rows) plus that scratch plus the bias, then a barrier (:mod:`._unit_split`'s),
since the next step's product reads every unit's hidden state.

Whether a call takes this path is a measured choice of three, by how many rows the split
by rows would give each thread (:data:`NARROW_ROWS`): ``MKL_UNITS_MIN_BYTES`` and
``MKL_UNITS_WIDE_MIN_BYTES``, bytes of ``weight_hh``, and ``MKL_UNITS_UNSPLIT_MIN_BYTES``
for a batch too small to split by rows (which then splits by units over the whole thread
budget); never by default, never without MKL, never for calls of fewer than
:data:`MIN_STEPS` steps (:mod:`._path`). The more rows share each read of the weights,
the less the split by units saves: two threads at T = 20, H = 512 ran 1.40x as fast by
units at 4 rows a thread, 1.14x at 10, 1.09x at 16 and 1.00x at 32; at H = 650 1.13x /
1.12x / 1.08x at 10 / 16 / 32 rows (the same Xeon, 2026-12-08). The packed
copies are kept across inference calls under :mod:`._pack_cache`'s rules (the same
array, unchanged shape, strides and address, the weights epoch, a sample), one entry per
weight array, for one batch size and thread count at a time.
"""

from __future__ import annotations

import ctypes
import weakref

import llvmlite.binding as llvm_binding
import numpy as np
from numba import types

from . import _blas, _weights_epoch
from ._aligned import aligned_floats
from ._jit import njit
from ._pack_cache import SAMPLES, sample_holds, take_sample
from ._primitives import FAST_MATH, infer_cell_row_sum
from ._unit_split import barrier

ALIGN = 16  # units: each thread's share starts on a multiple (whole 64-byte lines)
# Calls whose row split gives each thread at most this many rows follow
# MKL_UNITS_MIN_BYTES (measured at 8 rows a thread), the others MKL_UNITS_WIDE_MIN_BYTES
# (measured at 32): between the two probes' row counts, not itself a measured choice
NARROW_ROWS = 16
# Calls of fewer steps keep the other paths: the split's costs per call (two hand-offs to
# the threads, the first step's weights from the L3) outweigh what it saves per step. On
# a 2-core Intel Xeon, MKL split vs not: T = 1 0.22-0.69x, T = 4 0.70-1.00x, T = 8 1.08x,
# T = 16 1.26-1.59x (B = 1 and 20, H = 384 and 650). The shortest call its probes time.
MIN_STEPS = 10
_ROW, _NO_TRANS, _TRANS, _PACKED, _B_MATRIX = 101, 111, 112, 151, 162

_mkl = _blas.MKL if _blas.HAVE_BLAS else None
AVAILABLE = _mkl is not None and _mkl.compute != 0
"""Whether oneMKL's packed GEMM is there to run this path."""

# The compiled loop always links: MKL's compute where present, else the C library's
# abort (never called: the path is not taken without MKL)
_address = (
    _mkl.compute if AVAILABLE else ctypes.cast(ctypes.CDLL(None).abort, ctypes.c_void_p).value
)
llvm_binding.add_symbol("kioku_mkl_sgemm_compute", int(_address or 0))
_i64, _ptr = types.int64, types.intp
_compute = types.ExternalFunction(
    "kioku_mkl_sgemm_compute",
    types.void(types.int32, _i64, _i64, _i64, _i64, _i64, _ptr, _i64, _ptr, _i64, types.float32,
               _ptr, _i64),
)  # fmt: skip

_lib = ctypes.CDLL(_mkl.library) if AVAILABLE else None
if _lib is not None:
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _lib.cblas_sgemm_pack_get_size_64.argtypes = [ctypes.c_int, _i, _i, _i]
    _lib.cblas_sgemm_pack_get_size_64.restype = ctypes.c_size_t
    _lib.cblas_sgemm_pack_64.argtypes = [ctypes.c_int] * 3 + [_i] * 3 + [ctypes.c_float, _p, _i, _p]


def unit_bounds(hidden: int, parts: int) -> np.ndarray:
    """The units each of ``parts`` threads owns: ``(parts + 1,)`` int64 boundaries from 0
    to ``hidden``, each inner one a multiple of :data:`ALIGN` (a share may be empty)."""
    inner = [min(hidden, -(-hidden * k // parts) // ALIGN * ALIGN) for k in range(1, parts)]
    return np.array([0, *inner, hidden], np.int64)


def _pack(weight_hh: np.ndarray, batch: int, offs: np.ndarray) -> np.ndarray:
    """``weight_hh (4H, H)`` float32 C-contiguous packed by MKL per thread: row ``k`` of the
    result holds the rows of thread ``k``'s units (gate order) packed as the ``B`` operand
    of a ``(batch, H) @ (H, 4 n_k)`` product."""
    G, H = weight_hh.shape
    gate_rows = np.arange(4)[:, None] * H
    parts = offs.shape[0] - 1
    sizes = []
    for k in range(parts):
        n = int(offs[k + 1] - offs[k])
        sizes.append(_lib.cblas_sgemm_pack_get_size_64(_B_MATRIX, batch, 4 * n, H) if n else 0)
    width = -(-max(sizes) // 64) * 16  # floats: every row starts on a cache line
    packs = aligned_floats(parts * width).reshape(parts, width)
    for k in range(parts):
        u0, u1 = int(offs[k]), int(offs[k + 1])
        if u1 == u0:
            continue
        rows = np.ascontiguousarray(weight_hh[(gate_rows + np.arange(u0, u1)).ravel()])
        _lib.cblas_sgemm_pack_64(_ROW, _B_MATRIX, _TRANS, batch, 4 * (u1 - u0), H, 1.0,
                                 rows.ctypes.data, H, packs[k].ctypes.data)  # fmt: skip
    return packs


# id(weight_hh) -> (weak reference, shape, strides, epoch, sample, address, batch, parts, packs)
_entries: dict[int, tuple] = {}


def packs(
    weight_hh: np.ndarray, batch: int, parts: int, reuse: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(packs (parts, width), offs (parts + 1,))`` for a call of ``batch`` rows split over
    ``parts`` threads: the kept copy where ``reuse`` and :mod:`._pack_cache`'s rules say
    it is current for this array, batch and thread count, else packed now (and kept when
    ``reuse``). ``weight_hh (4H, H)`` float32, C-contiguous."""
    offs = unit_bounds(weight_hh.shape[1], parts)
    if not reuse:
        return _pack(weight_hh, batch, offs), offs
    key = id(weight_hh)
    entry = _entries.get(key)
    if (
        entry is not None
        and entry[0]() is weight_hh
        and entry[1:4] == (weight_hh.shape, weight_hh.strides, _weights_epoch._epoch)
        and entry[6:8] == (batch, parts)
        and sample_holds(weight_hh, entry[4], entry[5])
    ):  # fmt: skip
        return entry[8], offs
    sample, address = np.empty(SAMPLES, np.float32), np.zeros(1, np.int64)
    take_sample(weight_hh, sample, address)
    packed = _pack(weight_hh, batch, offs)
    ref = weakref.ref(weight_hh, lambda _, key=key: _entries.pop(key, None))
    _entries[key] = (ref, weight_hh.shape, weight_hh.strides, _weights_epoch._epoch, sample,
                     address, batch, parts, packed)  # fmt: skip
    return packed, offs


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_infer_mkl_units(
    gates, packs, offs, step_bias, h0, c, y, reverse, part, parts, progress
):  # fmt: skip
    """Thread ``part`` of ``parts`` of an inference call, every sequence ``T`` long, no
    projection. ``gates (T, B, 4H)`` the input projection ``x W_ih^T`` (no bias);
    ``packs``/``offs`` from :func:`packs`; ``step_bias (4H,)``; ``h0 (B, H)`` the initial
    hidden state (the final one on exit), ``c (B, H)`` the initial cell, updated in place
    to the final one; each step's hidden state is written to ``y[t] (T, B, H)`` and read
    back from there by the next step's product."""
    T, B, G = gates.shape
    H = G // 4
    u0, u1 = offs[part], offs[part + 1]
    n = u1 - u0
    pk = packs[part]
    rec = np.empty((B, 4 * n), gates.dtype)
    sb = step_bias[u0:]
    h_prev = h0
    for s in range(T):
        t = T - 1 - s if reverse else s
        h_next = y[t]
        if n > 0:
            _compute(_ROW, _NO_TRANS, _PACKED, B, 4 * n, H, h_prev.ctypes.data, H, pk.ctypes.data,
                     4 * n, 0.0, rec.ctypes.data, 4 * n)  # fmt: skip
            for b in range(B):
                infer_cell_row_sum(gates[t, b, u0:], rec[b], sb, c[b, u0:], h_next[b, u0:], n, H)
        barrier(progress, part, parts, s + 1)
        h_prev = h_next
    for b in range(B):  # every step written: the final state, this thread's units
        for j in range(u0, u1):
            h0[b, j] = h_prev[b, j]
