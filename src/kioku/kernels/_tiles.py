"""The packed kernel's register tile, chosen by measurement on the machine that runs it.

:func:`~kioku.kernels._packed.packed_gemm` holds 6 rows by a whole 64-column panel (4
AVX-512 vectors) in registers: 24 accumulators fed by 4 panel loads and 6 broadcasts
per step of the inner loop. BLIS's and MLAS's AVX-512 SGEMM kernels hold 12 rows by 2
vectors instead: as many accumulators from half the panel bytes per FMA, at the price
of twice the broadcasts. Which one a core runs faster depends on its FMA units and on
how many bytes a cycle its L2 gives: a Zen 4 (one 512-bit FMA a cycle) runs both at
113-115 GFLOP/s on one thread, a core with two 512-bit FMA units needs twice the bytes
a cycle for the same tile. So it is measured (``TALL_MIN_ROWS``,
:mod:`._tuning`): products of at least that many rows run :func:`tall_gemm`, each
panel as two 32-column halves, rows in blocks of up to :data:`TALL_MR`; fewer rows (or
``NO_LIMIT``, the default) the 6 x 4 tile. Every element is the same chain of FMAs
either way: the results are bit for bit the same.

Only the loops' per-step products take it (:func:`packed_product`: the recurrent
product and ``dh = dgates @ W_hh``; :func:`pair_step`: a fused step's two products in
gate order, each panel as gates i, f then g, o), whose left operand is a few rows
already in L1. The
GEMMs around the loops (:mod:`._loop_gemms`: the input projection, ``dx``, the weight
gradients) keep the 6 x 4 tile: their left operand is thousands of rows, which the
tall tile reads once per half panel, twice as often. With every product on the tall
tile a training step on this Zen 4 took 88 ms against 73 at (35, 20, 650), 171 against
101 at (100, 64, 256) and 96 against 57 at 2 x 256 bidirectional; with the per-step
products alone (fused steps included), in fresh processes: 74.4-74.5 / 74.9-75.9,
104.3-104.6 / 102.7-102.8, 8.9-10.1 / 9.1-10.4 and 60.4-65.1 / 60.4-67.0 ms; inference
2.23-2.24 / 2.24-2.25 ms at (35, 20, 200): a tie, as the probe finds.

The threshold lives in a C integer that the compiled code reads on every call (an
external symbol, bound by name like the BLAS functions of :mod:`._primitives`, so the
on-disk cache stays valid): :func:`sync_tuned` copies ``TALL_MIN_ROWS`` into it, which
:func:`kioku.kernels._tuning.apply` and the probes' settings do. Kernels built for AVX2
(16 registers) have no tall tile: their 6 x 2 tile already is BLIS's Haswell shape.
"""

from __future__ import annotations

from . import _tuning
from ._cells import int_cell
from ._gate_order import (
    GATE_UNITS,
    _make_pair_kernel,
    _p1,
    _p2,
    _p3,
    _p4,
    _p5,
    _p6,
    pair_product_panels,
)
from ._jit import njit
from ._packed import _ITEM, LANES, MR, NR, NR_VECS, _e21, _e22, _e23, _e24, _e25, _e26, _make_kernel
from ._packed import packed_gemm as wide_gemm

HAS_TALL = NR_VECS == 4  # AVX-512: 12 x 2 accumulators + 2 loads + 1 broadcast = 27 of 32
TALL_MR = 12 if HAS_TALL else MR
HALF = 2 * LANES  # columns of half a panel

TALL_MIN_ROWS = _tuning.current("TALL_MIN_ROWS")  # by hand: never (NO_LIMIT)

_cell, _tall_min_rows = int_cell("kioku_tall_min_rows")


def sync_tuned() -> None:
    """Copy ``TALL_MIN_ROWS`` (as set on this module) to where the compiled code reads
    it."""
    _cell.value = int(min(TALL_MIN_ROWS, 1 << 62))


sync_tuned()


# rows 7..12 of two vectors; rows 1..6 of two vectors are _packed's narrow edge kernels
_TALL = [_make_kernel(rows, 1, 2) for rows in range(7, TALL_MR + 1)] if HAS_TALL else []
_t7, _t8, _t9, _t10, _t11, _t12 = _TALL or [_e26] * 6


@njit(cache=True, nogil=True)
def _tall_tile(rows, accumulate, a, lda, b, c, ldc, k):
    # literal dispatch, as _packed._tile: rows x 2 vectors of half a panel
    if rows == 1:
        _e21(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 2:
        _e22(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 3:
        _e23(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 4:
        _e24(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 5:
        _e25(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 6:
        _e26(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 7:
        _t7(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 8:
        _t8(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 9:
        _t9(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 10:
        _t10(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 11:
        _t11(a, lda, b, c, ldc, k, accumulate, 0)
    else:
        _t12(a, lda, b, c, ldc, k, accumulate, 0)


@njit(cache=True, nogil=True)
def tall_gemm(a, panels, c, beta, tile):
    """:func:`~kioku.kernels._packed.packed_gemm` (same arguments, same results bit for
    bit) with every full panel run as two halves of :data:`HALF` columns, rows in blocks
    of at most :data:`TALL_MR` (as even as possible); a last panel only partly filled
    goes to the 6 x 4 tile's path."""
    M, K = a.shape
    N = c.shape[1]
    full = N // NR
    if M < 2 or K == 0 or full == 0:
        wide_gemm(a, panels, c, beta, tile)
        return
    accumulate = 1 if beta != 0 else 0
    lda, ldc = a.strides[0] // _ITEM, c.strides[0] // _ITEM
    a0, c0 = a.ctypes.data, c.ctypes.data
    blocks = -(-M // TALL_MR)
    base, extra = M // blocks, M % blocks
    for q in range(full):
        for h in range(0, NR, HALF):
            j0 = q * NR + h
            b_addr = panels[q].ctypes.data + h * _ITEM
            i = 0
            for block in range(blocks):
                rows = base + 1 if block < extra else base
                a_addr = a0 + i * lda * _ITEM
                _tall_tile(rows, accumulate, a_addr, lda, b_addr, c0 + (i * ldc + j0) * _ITEM,
                           ldc, K)  # fmt: skip
                i += rows
    if full < panels.shape[0]:
        wide_gemm(a, panels[full:], c[:, full * NR :], beta, tile)


@njit(cache=True, nogil=True)
def packed_product(a, panels, c, beta, tile):
    """``c (M, N) = a (M, K) @ B + beta * c`` as :func:`~kioku.kernels._packed.packed_gemm`
    (same arguments), on the tile measured for this machine: :func:`tall_gemm` from
    ``TALL_MIN_ROWS`` rows (and more than :data:`~kioku.kernels._packed.MR`: fewer rows
    would leave the tall tile too few accumulators), else the 6 x 4 tile."""
    M = a.shape[0]
    if HAS_TALL and M > MR and M >= _tall_min_rows():
        tall_gemm(a, panels, c, beta, tile)
    else:
        wide_gemm(a, panels, c, beta, tile)


# The fused step's pair kernels (both products in one chain, gate order): rows 1..6 are
# _gate_order's, called narrow; rows 7..12 narrow only
_TALL_PAIRS = [_make_pair_kernel(r, True) for r in range(7, TALL_MR + 1)] if HAS_TALL else []
_s7, _s8, _s9, _s10, _s11, _s12 = _TALL_PAIRS or [_p6] * 6


@njit(cache=True, nogil=True)
def _tall_pair(rows, a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs):
    # literal dispatch: two gates' vectors of ``rows`` rows, stored gs floats apart
    if rows == 1:
        _p1(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 2:
        _p2(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 3:
        _p3(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 4:
        _p4(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 5:
        _p5(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 6:
        _p6(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 7:
        _s7(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 8:
        _s8(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 9:
        _s9(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 10:
        _s10(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    elif rows == 11:
        _s11(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)
    else:
        _s12(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, 1)


@njit(cache=True, nogil=True)
def tall_pair_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q0, q1):
    """:func:`~kioku.kernels._gate_order.pair_product_panels` (same arguments, same
    results bit for bit) with each panel whose gates are one vector each run as two
    halves (gates i, f, then g, o), rows in blocks of at most :data:`TALL_MR`; a panel
    only partly filled goes to the 6 x 4 tile's path."""
    M = b1 - b0
    if M <= 0:
        return
    H = a.shape[1] // 4
    I, P = x_t.shape[1], h_prev.shape[1]
    lda1, lda2, ldc = x_t.strides[0] // _ITEM, h_prev.strides[0] // _ITEM, a.strides[0] // _ITEM
    x0, h0, a0 = x_t.ctypes.data, h_prev.ctypes.data, a.ctypes.data
    blocks = -(-M // TALL_MR)
    base, extra = M // blocks, M % blocks
    for q in range(q0, q1):
        u0 = q * GATE_UNITS
        if H - u0 < GATE_UNITS or GATE_UNITS != LANES:  # not one vector a gate
            pair_product_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q, q + 1)
            continue
        for g in range(0, 4, 2):
            off = g * LANES * _ITEM
            b_ih, b_hh = panels_ih[q].ctypes.data + off, panels_hh[q].ctypes.data + off
            i = b0
            for block in range(blocks):
                rows = base + 1 if block < extra else base
                a1, a2 = x0 + i * lda1 * _ITEM, h0 + i * lda2 * _ITEM
                dst = a0 + (i * ldc + g * H + u0) * _ITEM
                _tall_pair(rows, a1, lda1, b_ih, I, a2, lda2, b_hh, P, dst, ldc, H)
                i += rows


@njit(cache=True, nogil=True)
def pair_step(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q0, q1):
    """A fused step's two products as :func:`~kioku.kernels._gate_order.pair_product_panels`
    (same arguments), on the tile measured for this machine as :func:`packed_product`."""
    M = b1 - b0
    if HAS_TALL and M > MR and M >= _tall_min_rows():
        tall_pair_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q0, q1)
    else:
        pair_product_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q0, q1)
