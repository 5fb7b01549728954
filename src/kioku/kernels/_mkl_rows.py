"""A training call's recurrent products on oneMKL's packed GEMM, each thread on its own
batch rows (the ``mkl`` extra).

A training call over a batch split by rows multiplies, at every step, each thread's
rows of the hidden state by the whole of ``weight_hh.T`` (forward) and each thread's
rows of the gate gradients by the whole of ``weight_hh`` (backward). From a few MiB of
weights on (past the L2), oneMKL's packed GEMM (``cblas_sgemm_pack`` once per call,
``cblas_sgemm_compute`` every step) ran those products faster than kioku's own packed
kernel on a 2-core Intel Xeon (Emerald Rapids class; two threads, 16 rows each, 50
steps): 184-221 against 145-168 GFLOP/s for the forward's ``(16, 1024) @ (1024, 4096)``,
95-101 against 71-84 for the backward's ``(16, 4096) @ (4096, 1024)``
(``benchmarks/results/intel-2core-2026-12-08c``). In whole training calls most of that
went (the same Xeon, interleaved: 1.07x at (35, 20, 650), 1.02-1.05x at (50, 32, 512),
0.96-1.04x at (50, 32, 1024); the forward gained, the backward not), and at small ``H``,
with the weights in the L2, kioku's kernel keeps the lead, so whether a call takes this
path is a measured choice: ``MKL_ROWS_MIN_BYTES`` of ``weight_hh``, never by default,
never without MKL (:mod:`._path`); that Xeon's tuning left it off.

A copy packed by MKL is about 1.7-3.2x the bytes of the weights (27 MiB for a 4096 x
1024 ``weight_hh``), and a training step changes the weights: the forward packs
``weight_hh.T`` and the backward ``weight_hh`` afresh on each call, and neither copy
outlives its loop. float32, no projection, every step of every sequence valid; the
arithmetic of the gate passes is the row loops' (:mod:`._lstm_loops`), only the
products' summation order is MKL's. Shapes and slots as in :mod:`._lstm_loops`.
"""

from __future__ import annotations

import numpy as np

from ._aligned import aligned_floats
from ._jit import njit
from ._mkl_units import _B_MATRIX, _NO_TRANS, _PACKED, _ROW, _TRANS, _compute, _lib
from ._primitives import FAST_MATH, gate_views, train_cell_row


def pack(weight_hh: np.ndarray, rows: int, transposed: bool) -> np.ndarray:
    """``weight_hh (4H, H)`` float32, C-contiguous, packed by MKL as the ``B`` operand of a
    product of ``rows`` rows: of ``h (rows, H) @ weight_hh.T`` where ``transposed`` (the
    forward), of ``dgates (rows, 4H) @ weight_hh`` otherwise (the backward). A 1-D
    float32 array aligned to a cache line."""
    G, H = weight_hh.shape
    n, k = (G, H) if transposed else (H, G)
    trans = _TRANS if transposed else _NO_TRANS
    size = _lib.cblas_sgemm_pack_get_size_64(_B_MATRIX, rows, n, k)
    packed = aligned_floats(-(-size // 4))
    _lib.cblas_sgemm_pack_64(
        _ROW, _B_MATRIX, trans, rows, n, k, 1.0, weight_hh.ctypes.data, H, packed.ctypes.data
    )
    return packed


def packs(weight_hh: np.ndarray, slices: tuple[slice, ...], transposed: bool) -> list[np.ndarray]:
    """One :func:`pack` per thread part of ``slices`` (batch rows), shared by parts of the
    same row count: MKL's packed operand belongs to the ``M`` it was packed for."""
    by_rows: dict[int, np.ndarray] = {}
    out = []
    for rows in slices:
        count = rows.stop - rows.start
        if count not in by_rows:
            by_rows[count] = pack(weight_hh, count, transposed)
        out.append(by_rows[count])
    return out


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_forward_mkl_rows(gates, packed, step_bias, h_state, c_state, tanh_c, y, reverse, b0, b1):
    """Rows ``b0:b1`` of a training forward. ``gates (T, B, 4H)`` holds ``x W_ih^T`` on
    entry and the activated i, f, g, o on exit; ``packed`` :func:`pack` of ``weight_hh``
    (``transposed``) for ``b1 - b0`` rows; ``step_bias (4H,)``; ``h_state``/``c_state
    (T+1, B, H)`` hold the initial state in slot ``T * reverse``; fills ``tanh_c (T, B,
    H)`` and ``y (T, B, H)``."""
    T, B, G = gates.shape
    H = G // 4
    r = 1 if reverse else 0
    M = b1 - b0
    if M <= 0:
        return
    for s in range(T):
        t = T - 1 - s if reverse else s
        h_prev, c_prev = h_state[t + r], c_state[t + r]
        h_next, c_next = h_state[t + 1 - r], c_state[t + 1 - r]
        a = gates[t]
        _compute(_ROW, _NO_TRANS, _PACKED, M, G, H, h_prev[b0:].ctypes.data, H,
                 packed.ctypes.data, G, 1.0, a[b0:].ctypes.data, G)  # fmt: skip
        for b in range(b0, b1):
            hn, yt = h_next[b], y[t, b]
            train_cell_row(a[b], step_bias, c_prev[b], c_next[b], tanh_c[t, b], hn, H, H)
            for j in range(H):
                yt[j] = hn[j]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def lstm_backward_mkl_rows(dy, gates, c_state, tanh_c, packed, dgates, dh, dc, reverse, b0, b1):
    """Rows ``b0:b1`` of backprop through time. Reads ``dy (T, B, H)`` (any strides) and
    the forward's ``gates``, ``c_state``, ``tanh_c``; ``packed`` :func:`pack` of
    ``weight_hh`` (not ``transposed``) for ``b1 - b0`` rows; writes ``dgates (T, B,
    4H)``; ``dh``/``dc (B, H)`` hold the final state's gradient on entry and the initial
    state's on exit."""
    T, B, G = dgates.shape
    H = G // 4
    r = 1 if reverse else 0
    one = dy.dtype.type(1)
    M = b1 - b0
    if M <= 0:
        return
    for s in range(T):
        t = s if reverse else T - 1 - s
        c_prev = c_state[t + r]
        # the gate pass of lstm_backward_loop, every step valid, written out in place as
        # there and in _unit_split (an inlined shared primitive measured ~2 % slower)
        for b in range(b0, b1):
            cp, tc, dhb, dcb, dyb = c_prev[b], tanh_c[t, b], dh[b], dc[b], dy[t, b]
            ri, rf, rg, ro = gate_views(gates[t, b], H, H)
            di, df, dg, do = gate_views(dgates[t, b], H, H)
            for j in range(H):
                i, f, g, o = ri[j], rf[j], rg[j], ro[j]
                th = tc[j]
                dhj = dhb[j] + dyb[j]
                dcs = dcb[j] + dhj * o * (one - th * th)
                di[j] = dcs * g * i * (one - i)
                df[j] = dcs * cp[j] * f * (one - f)
                dg[j] = dcs * i * (one - g * g)
                do[j] = dhj * th * o * (one - o)
                dcb[j] = dcs * f
        _compute(_ROW, _NO_TRANS, _PACKED, M, H, G, dgates[t, b0:].ctypes.data, G,
                 packed.ctypes.data, H, 0.0, dh[b0:].ctypes.data, H)  # fmt: skip
