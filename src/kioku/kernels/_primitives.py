"""Compiled building blocks for the LSTM loops: GEMM into preallocated buffers and
SIMD-friendly activations.

``gemm``, ``gemm_nn`` and ``gemm_nt`` (the BLAS GEMM into preallocated buffers) live in
:mod:`._gemm` and are imported here for the loops. ``fast_tanh``/``fast_sigmoid`` use, for
float32, a rational approximation of tanh (absolute error below 4e-7, the one Eigen
uses) that LLVM vectorises, because ``math.tanh`` stays a scalar libm call without
SVML; for float64 they use ``math.tanh`` so the float64 path matches the reference to
rounding.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from ._gemm import HAVE_BLAS, gemm, gemm_nn, gemm_nt  # noqa: F401  (the loops' GEMMs)
from ._jit import njit

# Fast-math flags that keep inf/NaN semantics (no nnan/ninf): contraction into FMA,
# reciprocal division, reassociation for vectorisation.
FAST_MATH = {"contract", "arcp", "afn", "nsz", "reassoc"}


SMALL_ROWS = 2  # up to this many rows, a compiled dot-product loop beats a BLAS call
L2_BYTES = 1 << 20  # weights above this are not cache-resident across steps


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _dot_gemm_nt(a, b, c, beta):
    m, k = a.shape
    n = c.shape[1]
    n4 = n - n % 4
    for i in range(m):
        x = a[i]
        for j in range(0, n4, 4):  # four rows of b per pass over x
            b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
            s0 = s1 = s2 = s3 = c.dtype.type(0)
            for p in range(k):
                s0 += x[p] * b0[p]
                s1 += x[p] * b1[p]
                s2 += x[p] * b2[p]
                s3 += x[p] * b3[p]
            if beta != 0:
                s0, s1, s2, s3 = s0 + c[i, j], s1 + c[i, j + 1], s2 + c[i, j + 2], s3 + c[i, j + 3]
            c[i, j], c[i, j + 1], c[i, j + 2], c[i, j + 3] = s0, s1, s2, s3
        for j in range(n4, n):
            total = c.dtype.type(0)
            for p in range(k):
                total += x[p] * b[j, p]
            c[i, j] = total + c[i, j] if beta != 0 else total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _dot2_gemm_nt(a, b, c, beta):
    """Two rows of ``a`` per pass over ``b`` (then one), four rows of ``b`` at a time."""
    m, k = a.shape
    n = c.shape[1]
    n4 = n - n % 4
    zero = c.dtype.type(0)
    m2 = m - m % 2
    for i in range(0, m2, 2):
        x, z = a[i], a[i + 1]
        for j in range(0, n4, 4):
            b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
            s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero
            for p in range(k):
                xp, zp = x[p], z[p]
                s0 += xp * b0[p]
                s1 += xp * b1[p]
                s2 += xp * b2[p]
                s3 += xp * b3[p]
                t0 += zp * b0[p]
                t1 += zp * b1[p]
                t2 += zp * b2[p]
                t3 += zp * b3[p]
            if beta != 0:
                s0, s1, s2, s3 = s0 + c[i, j], s1 + c[i, j + 1], s2 + c[i, j + 2], s3 + c[i, j + 3]
                t0, t1 = t0 + c[i + 1, j], t1 + c[i + 1, j + 1]
                t2, t3 = t2 + c[i + 1, j + 2], t3 + c[i + 1, j + 3]
            c[i, j], c[i, j + 1], c[i, j + 2], c[i, j + 3] = s0, s1, s2, s3
            c[i + 1, j], c[i + 1, j + 1], c[i + 1, j + 2], c[i + 1, j + 3] = t0, t1, t2, t3
        if n4 < n:
            _dot_gemm_nt(a[i : i + 2], b[n4:], c[i : i + 2, n4:], beta)
    if m2 < m:
        _dot_gemm_nt(a[m2:], b, c[m2:], beta)


@njit(inline="always")
def _col4(a, i, p):
    """``a[i:i + 4, p]`` as a tuple (held in registers)."""
    return (a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p])


@njit(inline="always")
def _fma4(s, x, w):
    """``s + x * w`` for the 4-tuples ``s`` (accumulators) and ``x``, one ``w``."""
    return (s[0] + x[0] * w, s[1] + x[1] * w, s[2] + x[2] * w, s[3] + x[3] * w)


@njit(inline="always")
def _finish4(s, c, i, j, beta):
    """``c[i:i + 4, j] = s (+ c[i:i + 4, j] when beta)``, the old ``c`` added last."""
    for r in range(4):
        c[i + r, j] = s[r] + c[i + r, j] if beta != 0 else s[r]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _tile4_gemm_nt(a, b, c, beta):
    """4 rows of ``a`` times 4 rows of ``b`` per pass, 16 accumulators in registers."""
    m, k = a.shape
    n = b.shape[0]
    zero = c.dtype.type(0)
    m4 = m - m % 4
    n4 = n - n % 4
    for i in range(0, m4, 4):
        for j in range(0, n4, 4):
            b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
            s0 = s1 = s2 = s3 = (zero, zero, zero, zero)  # column j + q of rows i..i+3
            for p in range(k):
                x = _col4(a, i, p)
                s0, s1 = _fma4(s0, x, b0[p]), _fma4(s1, x, b1[p])
                s2, s3 = _fma4(s2, x, b2[p]), _fma4(s3, x, b3[p])
            _finish4(s0, c, i, j, beta)
            _finish4(s1, c, i, j + 1, beta)
            _finish4(s2, c, i, j + 2, beta)
            _finish4(s3, c, i, j + 3, beta)
        if n4 < n:
            _dot_gemm_nt(a[i : i + 4], b[n4:], c[i : i + 4, n4:], beta)
    if m4 < m:
        _dot2_gemm_nt(a[m4:], b, c[m4:], beta)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _tile8_gemm_nt(a, b, c, beta):
    """8 rows of ``a`` times 2 rows of ``b`` per pass: each row of ``b`` (read from L3
    when the weights miss L2) serves 8 rows of ``a``."""
    (m, k), n, zero = a.shape, b.shape[0], c.dtype.type(0)
    m8, n2 = m - m % 8, n - n % 2
    for i in range(0, m8, 8):
        for j in range(0, n2, 2):
            b0, b1 = b[j], b[j + 1]
            # u: rows i..i+3, v: rows i+4..i+7; 0 and 1: columns j and j + 1
            u0 = u1 = v0 = v1 = (zero, zero, zero, zero)
            for p in range(k):
                xu, xv, w0, w1 = _col4(a, i, p), _col4(a, i + 4, p), b0[p], b1[p]
                u0, u1 = _fma4(u0, xu, w0), _fma4(u1, xu, w1)
                v0, v1 = _fma4(v0, xv, w0), _fma4(v1, xv, w1)
            _finish4(u0, c, i, j, beta)
            _finish4(u1, c, i, j + 1, beta)
            _finish4(v0, c, i + 4, j, beta)
            _finish4(v1, c, i + 4, j + 1, beta)
        if n2 < n:
            _dot_gemm_nt(a[i : i + 8], b[n2:], c[i : i + 8, n2:], beta)
    if m8 < m:
        _tile4_gemm_nt(a[m8:], b, c[m8:], beta)


@njit(cache=True, nogil=True)
def emit_step(y_t, h_next, h_prev, lengths, t, b0, b1):
    """Rows ``b0:b1`` of step ``t``'s output ``y_t (B, P)``: ``h_next (B, P)`` for the
    sequences still running; past its length a sequence keeps its state (``h_next``
    takes ``h_prev``) and outputs zeros."""
    zero = y_t.dtype.type(0)
    for b in range(b0, b1):
        if t < lengths[b]:
            for p in range(y_t.shape[1]):
                y_t[b, p] = h_next[b, p]
        else:
            for p in range(y_t.shape[1]):
                h_next[b, p] = h_prev[b, p]
                y_t[b, p] = zero


@njit(cache=True, nogil=True)
def step_gemm(a, b_nt, b_nn, c, beta, tiled):
    """``c (M, N) = a (M, K) @ B + beta * c`` for one time step, given ``B`` both as
    ``b_nt (N, K)`` (rows contiguous along K) and ``b_nn (K, N)``. A few rows (batch 1)
    use a dot-product loop (no BLAS call overhead); with ``tiled`` (weights too big for
    L2, where BLAS repacks them from L3 on every call) a register-tiled loop reads
    ``b_nt`` in place, 8 rows of ``a`` per pass; otherwise BLAS on ``b_nn``. The unused
    layout may be a dummy."""
    if a.shape[0] <= SMALL_ROWS:
        _dot2_gemm_nt(a, b_nt, c, beta)
    elif tiled:
        _tile8_gemm_nt(a, b_nt, c, beta)
    else:
        gemm(False, False, a, b_nn, c, beta)


def fast_tanh(x):  # pragma: no cover - replaced by the overload
    return math.tanh(x)


# Eigen's float tanh: x * p(x^2) / q(x^2) on [-7.9053, 7.9053], where float32 tanh is 1.
_A = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_B = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


@overload(fast_tanh)
def _fast_tanh_impl(x):
    if x == types.float32:
        a1, a3, a5, a7, a9, a11, a13 = (np.float32(v) for v in _A)
        b0, b2, b4, b6 = (np.float32(v) for v in _B)
        lo, hi = np.float32(-7.90531110763549805), np.float32(7.90531110763549805)

        def impl(x):
            x = lo if x < lo else x  # selects, not min/max, so the loop vectorises
            x = hi if x > hi else x
            x2 = x * x
            p = a13
            p = p * x2 + a11
            p = p * x2 + a9
            p = p * x2 + a7
            p = p * x2 + a5
            p = p * x2 + a3
            p = p * x2 + a1
            q = b6
            q = q * x2 + b4
            q = q * x2 + b2
            q = q * x2 + b0
            return x * p / q

        return impl
    return lambda x: math.tanh(x)


def fast_sigmoid(x):  # pragma: no cover - replaced by the overload
    return 0.5 * math.tanh(0.5 * x) + 0.5


@overload(fast_sigmoid)
def _fast_sigmoid_impl(x):
    """``sigmoid(x) = 0.5 tanh(x / 2) + 0.5``, as the reference computes it, in x's type."""
    half = np.float32(0.5) if x == types.float32 else 0.5

    def impl(x):
        return fast_tanh(x * half) * half + half

    return impl


@njit(cache=True, nogil=True, inline="always")
def gate_views(row, count, H):
    """The four gates' ``count`` units of ``row`` (``row[0]``, ``row[H]``, ``row[2H]``,
    ``row[3H]`` on), as four views. A gate pass that indexes one array at ``j``, ``H + j``,
    ... and writes into it (the training pass writes the activated gates back) vectorises
    only where ``count`` is ``H`` itself (the batch loops): with ``count`` below ``H`` (a
    thread's units, :mod:`._unit_split`) LLVM could not rule out overlap and left the loop
    scalar, 7x slower (6.68 against 0.90 ms for 35 steps of 20 x 320 and 10 x 650 units,
    one thread, Intel Xeon). Through four views it vectorises either way, with the same
    results bit for bit."""
    return row[:count], row[H : H + count], row[2 * H : 2 * H + count], row[3 * H : 3 * H + count]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH, inline="always")
def infer_cell_row(row, sb, cb, u, count, H):
    """The inference step's gate pass for ``count`` units of one row: ``row`` the
    pre-activations of unit 0 of each gate at ``row[0]``, ``row[H]``, ``row[2H]``,
    ``row[3H]`` (a row of ``(B, 4H)``, or its view from a first unit on), plus ``sb`` laid
    out the same, through the gates; the cell ``cb`` updated in place and the hidden state
    ``o * tanh(c)`` written to ``u`` (``count`` each); nothing kept for a backward.
    Inlined into its callers (Numba IR), so the loop vectorises there as if written in
    place (an index from 0 lets it: a view from the first unit, not ``range(u0, u1)``):
    the batch loops' (:mod:`._lstm_loops`), the one-sequence loop's (:mod:`._row_loop`)
    and the unit split's (:mod:`._unit_split`). Each gate is read through a view of its
    own (:func:`gate_views`)."""
    ri, rf, rg, ro = gate_views(row, count, H)
    si, sf, sg, so = gate_views(sb, count, H)
    for j in range(count):
        i = fast_sigmoid(ri[j] + si[j])
        f = fast_sigmoid(rf[j] + sf[j])
        g = fast_tanh(rg[j] + sg[j])
        o = fast_sigmoid(ro[j] + so[j])
        cj = f * cb[j] + i * g
        cb[j] = cj
        u[j] = o * fast_tanh(cj)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH, inline="always")
def infer_cell_row_sum(row, rec, sb, cb, u, count, H):
    """:func:`infer_cell_row` with each pre-activation the sum of two parts: ``row`` (from
    unit 0 of each gate at ``row[0]``, ``row[H]``, ``row[2H]``, ``row[3H]``: the input
    projection) plus ``rec`` (the same units at ``rec[0]``, ``rec[count]``,
    ``rec[2 count]``, ``rec[3 count]``: the recurrent product of one thread's units),
    summed ``(row + rec) + sb`` as every loop sums ``(x W_ih^T + h W_hh^T) + b``.
    Inlined as :func:`infer_cell_row` is, each gate through views (:func:`gate_views`)."""
    ri, rf, rg, ro = gate_views(row, count, H)
    ei, ef, eg, eo = gate_views(rec, count, count)
    si, sf, sg, so = gate_views(sb, count, H)
    for j in range(count):
        i = fast_sigmoid((ri[j] + ei[j]) + si[j])
        f = fast_sigmoid((rf[j] + ef[j]) + sf[j])
        g = fast_tanh((rg[j] + eg[j]) + sg[j])
        o = fast_sigmoid((ro[j] + eo[j]) + so[j])
        cj = f * cb[j] + i * g
        cb[j] = cj
        u[j] = o * fast_tanh(cj)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH, inline="always")
def train_cell_row(row, sb, cp, cn, tc, u, count, H):
    """The training step's gate pass for ``count`` units of one row, laid out as in
    :func:`infer_cell_row`: the activated i, f, g, o written back over their
    pre-activations in ``row``, the new cell to ``cn`` from the previous ``cp``, its tanh
    to ``tc`` and ``o * tanh(c)`` to ``u``: what the backward reads. Inlined as
    :func:`infer_cell_row` is, each gate through a view of its own (:func:`gate_views`)."""
    ri, rf, rg, ro = gate_views(row, count, H)
    si, sf, sg, so = gate_views(sb, count, H)
    for j in range(count):
        i = fast_sigmoid(ri[j] + si[j])
        f = fast_sigmoid(rf[j] + sf[j])
        g = fast_tanh(rg[j] + sg[j])
        o = fast_sigmoid(ro[j] + so[j])
        ri[j] = i
        rf[j] = f
        rg[j] = g
        ro[j] = o
        c = f * cp[j] + i * g
        cn[j] = c
        th = fast_tanh(c)
        tc[j] = th
        u[j] = o * th


@njit(cache=True, nogil=True)
def all_zero(h, b0, b1):
    """Whether rows ``b0:b1`` of ``h (B, P)`` are all zeros (``-0.0`` included)."""
    for b in range(b0, b1):
        for p in range(h.shape[1]):
            if h[b, p] != 0:
                return False
    return True
