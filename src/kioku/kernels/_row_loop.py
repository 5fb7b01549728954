"""Float32 inference of one sequence (batch 1): each step's recurrent product reads the
packed panels in the opposite order to the step before.

One row against ``weight_hh.T`` reads every panel once per step and reuses none of it
within the step: at H = 64 that is 64 KB a step, twice an L1 data cache of 32 KB, so
the product runs at the L2's bandwidth. Read first-to-last, the panels a step needs
first are the ones evicted longest ago; read in alternating directions, each step
starts on the panels the step before read last, still in L1. (50, 1, 64), the product
alone, 50 steps, min of 15 interleaved rounds of CPU time on a shared machine: 31.0 µs
in one direction (``_packed.packed_gemm``), 24.5 µs alternating.

Each output column's sum runs over K in order inside one panel pass, whatever order the
panels come in, so the product is bit for bit ``packed_gemm``'s. The gate pass is
:func:`~kioku.kernels._lstm_loops.lstm_infer_loop`'s for one row with every step valid
(its ``direct`` case). Everything here reads raw addresses of C-contiguous float32 rows.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from ._packed import _ITEM, MR, NR, _row_panels, _tile, partial_tile
from ._primitives import FAST_MATH, all_zero, infer_cell_row

# Full panels per pass: two hold 2 x NR / LANES accumulators, enough to hide the FMA
# latency (one panel has only 4), and keep the passes short enough to alternate.
PASS = 2


@njit(cache=True, nogil=True)
def row_product(a, panels, c, n, backwards, tile):
    """``c (1, n) += a (1, K) @ B``, ``B (K, n)`` as ``panels`` from
    :func:`~kioku.kernels._packed.pack_panels`, the panels visited last to first when
    ``backwards``; ``tile (MR, NR)`` is scratch for a last, partial panel."""
    K = a.shape[1]
    full = n // NR
    passes = -(-full // PASS)
    stride = panels.strides[0] // _ITEM
    a0, c0 = a.ctypes.data, c.ctypes.data
    partial = n - full * NR
    for k in range(passes + (1 if partial else 0)):
        q = passes + (1 if partial else 0) - 1 - k if backwards else k
        if q == passes:  # the partial panel, through the tile: only the vectors it needs
            partial_tile(1, partial, a0, 0, panels[full].ctypes.data, tile.ctypes.data, NR, K)
            for v in range(partial):
                c[0, full * NR + v] += tile[0, v]
            continue
        first = q * PASS
        count = min(PASS, full - first)
        b_addr, c_addr = panels[first].ctypes.data, c0 + first * NR * _ITEM
        if count == 1:
            _tile(1, 1, a0, 0, b_addr, c_addr, 0, K)
        else:
            _row_panels(count, 1, a0, b_addr, stride, c_addr, K)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def row_infer_loop(gates, panels, bias, h, c, y, reverse):
    """The recurrence of one sequence, every step valid, no projection: ``gates (T, 1,
    4H)`` holds ``x W_ih^T`` on entry (overwritten as scratch), ``panels``
    ``weight_hh.T (H, 4H)`` packed, ``bias (4H,)`` added in the gate pass (as every
    inference loop adds it), ``h (1, H)``/``c (1, H)`` the initial state on entry
    and the final one on exit; fills ``y (T, 1, H)``, each step's hidden state read back
    from there by the next. A zero initial state skips the first step's product."""
    T = y.shape[0]
    G = gates.shape[2]
    H = G // 4
    tile = np.empty((MR, NR), np.float32)
    h_prev = h
    zero_start = all_zero(h, 0, 1)  # its first product (zeros, for finite weights) skipped
    for s in range(T):
        t = T - 1 - s if reverse else s
        a = gates[t]
        if s > 0 or not zero_start:
            row_product(h_prev, panels, a, G, s % 2 == 1, tile)
        infer_cell_row(a[0], bias, c[0], y[t, 0], H, H)
        h_prev = y[t]
    h[0, :] = h_prev[0]
