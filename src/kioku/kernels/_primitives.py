"""Compiled building blocks for the LSTM loops: GEMM into preallocated buffers and
SIMD-friendly activations.

``gemm_nt(a, b, c, beta)`` computes ``c = a @ b.T + beta * c`` and ``gemm_nn`` computes
``c = a @ b + beta * c`` for C-contiguous 2-D arrays, through the BLAS of
:mod:`kioku.kernels._blas` when there is one. ``fast_tanh``/``fast_sigmoid`` use, for
float32, a rational approximation of tanh (absolute error below 4e-7, the one Eigen
uses) that LLVM vectorises, because ``math.tanh`` stays a scalar libm call without
SVML; for float64 they use ``math.tanh`` so the float64 path matches the reference to
rounding.
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm_binding
import numpy as np
from numba import njit, types
from numba.extending import overload

from . import _blas

if _blas.HAVE_BLAS:
    llvm_binding.load_library_permanently(_blas.LIBRARY)
    _int = types.int64 if _blas.INT64 else types.int32
    _ptr, _i32 = types.intp, types.int32

    def _gemm_type(real):
        args = (_i32, _i32, _i32, _int, _int, _int, real, _ptr, _int, _ptr, _int, real, _ptr, _int)
        return types.void(*args)

    _sgemm = types.ExternalFunction(_blas.SGEMM_SYMBOL, _gemm_type(types.float32))
    _dgemm = types.ExternalFunction(_blas.DGEMM_SYMBOL, _gemm_type(types.float64))

# Fast-math flags that keep inf/NaN semantics (no nnan/ninf): contraction into FMA,
# reciprocal division, reassociation for vectorisation.
FAST_MATH = {"contract", "arcp", "afn", "nsz", "reassoc"}

HAVE_BLAS = _blas.HAVE_BLAS
ROW, NT, T = _blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS


@njit(cache=True, nogil=True)
def _loop_gemm(trans_a, trans_b, a, b, c, beta):
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    for i in range(m):
        for j in range(n):
            total = c[i, j] * beta if beta != 0 else c.dtype.type(0)
            for p in range(k):
                a_ip = a[p, i] if trans_a else a[i, p]
                b_pj = b[j, p] if trans_b else b[p, j]
                total += a_ip * b_pj
            c[i, j] = total


@njit(cache=True, nogil=True)
def _leading(x):
    """BLAS leading dimension of a 2-D array with unit stride along its rows: the row
    stride (so column slices work), except for one row, whose stride NumPy may set to
    anything."""
    if x.shape[0] <= 1:
        return max(x.shape[1], 1)
    return x.strides[0] // x.itemsize


def _blas_gemm(trans_a, trans_b, a, b, c, beta):  # pragma: no cover - replaced below
    raise NotImplementedError


@overload(_blas_gemm)
def _blas_gemm_impl(trans_a, trans_b, a, b, c, beta):
    if not HAVE_BLAS:
        return lambda trans_a, trans_b, a, b, c, beta: _loop_gemm(trans_a, trans_b, a, b, c, beta)
    fn = _sgemm if a.dtype == types.float32 else _dgemm

    def impl(trans_a, trans_b, a, b, c, beta):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        ta, tb = (T if trans_a else NT), (T if trans_b else NT)
        lda, ldb, ldc = _leading(a), _leading(b), _leading(c)
        a_ptr, b_ptr, c_ptr = a.ctypes.data, b.ctypes.data, c.ctypes.data
        fn(ROW, ta, tb, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc)

    return impl


@njit(cache=True, nogil=True)
def gemm(trans_a, trans_b, a, b, c, beta):
    """``c (M, N) = op(a) @ op(b) + beta * c`` with ``op`` a transpose when asked; all
    2-D with unit stride along the last axis (row and column slices of C-contiguous
    arrays are fine)."""
    _blas_gemm(trans_a, trans_b, a, b, c, beta)


@njit(cache=True, nogil=True)
def gemm_nn(a, b, c, beta):
    """``c (M, N) = a (M, K) @ b (K, N) + beta * c``."""
    gemm(False, False, a, b, c, beta)


@njit(cache=True, nogil=True)
def gemm_nt(a, b, c, beta):
    """``c (M, N) = a (M, K) @ b (N, K).T + beta * c``."""
    gemm(False, True, a, b, c, beta)


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


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _tile4_gemm_nt(a, b, c, beta):
    m, k = a.shape
    n = b.shape[0]
    zero = c.dtype.type(0)
    m4 = m - m % 4
    n4 = n - n % 4
    for i in range(0, m4, 4):
        a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        for j in range(0, n4, 4):
            b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
            s00 = s01 = s02 = s03 = zero
            s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = zero
            s30 = s31 = s32 = s33 = zero
            for p in range(k):
                x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
                w0, w1, w2, w3 = b0[p], b1[p], b2[p], b3[p]
                s00 += x0 * w0
                s01 += x0 * w1
                s02 += x0 * w2
                s03 += x0 * w3
                s10 += x1 * w0
                s11 += x1 * w1
                s12 += x1 * w2
                s13 += x1 * w3
                s20 += x2 * w0
                s21 += x2 * w1
                s22 += x2 * w2
                s23 += x2 * w3
                s30 += x3 * w0
                s31 += x3 * w1
                s32 += x3 * w2
                s33 += x3 * w3
            if beta != 0:
                s00 += c[i, j]
                s01 += c[i, j + 1]
                s02 += c[i, j + 2]
                s03 += c[i, j + 3]
                s10 += c[i + 1, j]
                s11 += c[i + 1, j + 1]
                s12 += c[i + 1, j + 2]
                s13 += c[i + 1, j + 3]
                s20 += c[i + 2, j]
                s21 += c[i + 2, j + 1]
                s22 += c[i + 2, j + 2]
                s23 += c[i + 2, j + 3]
                s30 += c[i + 3, j]
                s31 += c[i + 3, j + 1]
                s32 += c[i + 3, j + 2]
                s33 += c[i + 3, j + 3]
            c[i, j], c[i, j + 1], c[i, j + 2], c[i, j + 3] = s00, s01, s02, s03
            c[i + 1, j], c[i + 1, j + 1], c[i + 1, j + 2], c[i + 1, j + 3] = s10, s11, s12, s13
            c[i + 2, j], c[i + 2, j + 1], c[i + 2, j + 2], c[i + 2, j + 3] = s20, s21, s22, s23
            c[i + 3, j], c[i + 3, j + 1], c[i + 3, j + 2], c[i + 3, j + 3] = s30, s31, s32, s33
        if n4 < n:
            _dot_gemm_nt(a[i : i + 4], b[n4:], c[i : i + 4, n4:], beta)
    if m4 < m:
        _dot2_gemm_nt(a[m4:], b, c[m4:], beta)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _tile8_gemm_nt(a, b, c, beta):
    m, k = a.shape
    n = b.shape[0]
    zero = c.dtype.type(0)
    m8 = m - m % 8
    n2 = n - n % 2
    for i in range(0, m8, 8):
        a0, a1, a2, a3, a4, a5, a6, a7 = (
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        )
        for j in range(0, n2, 2):
            b0, b1 = b[j], b[j + 1]
            s00 = s10 = s20 = s30 = s40 = s50 = s60 = s70 = zero
            s01 = s11 = s21 = s31 = s41 = s51 = s61 = s71 = zero
            for p in range(k):
                w0, w1 = b0[p], b1[p]
                x = a0[p]
                s00 += x * w0
                s01 += x * w1
                x = a1[p]
                s10 += x * w0
                s11 += x * w1
                x = a2[p]
                s20 += x * w0
                s21 += x * w1
                x = a3[p]
                s30 += x * w0
                s31 += x * w1
                x = a4[p]
                s40 += x * w0
                s41 += x * w1
                x = a5[p]
                s50 += x * w0
                s51 += x * w1
                x = a6[p]
                s60 += x * w0
                s61 += x * w1
                x = a7[p]
                s70 += x * w0
                s71 += x * w1
            if beta != 0:
                s00 += c[i, j]
                s01 += c[i, j + 1]
                s10 += c[i + 1, j]
                s11 += c[i + 1, j + 1]
                s20 += c[i + 2, j]
                s21 += c[i + 2, j + 1]
                s30 += c[i + 3, j]
                s31 += c[i + 3, j + 1]
                s40 += c[i + 4, j]
                s41 += c[i + 4, j + 1]
                s50 += c[i + 5, j]
                s51 += c[i + 5, j + 1]
                s60 += c[i + 6, j]
                s61 += c[i + 6, j + 1]
                s70 += c[i + 7, j]
                s71 += c[i + 7, j + 1]
            c[i, j], c[i, j + 1], c[i + 1, j], c[i + 1, j + 1] = s00, s01, s10, s11
            c[i + 2, j], c[i + 2, j + 1], c[i + 3, j], c[i + 3, j + 1] = s20, s21, s30, s31
            c[i + 4, j], c[i + 4, j + 1], c[i + 5, j], c[i + 5, j + 1] = s40, s41, s50, s51
            c[i + 6, j], c[i + 6, j + 1], c[i + 7, j], c[i + 7, j + 1] = s60, s61, s70, s71
        if n2 < n:
            _dot_gemm_nt(a[i : i + 8], b[n2:], c[i : i + 8, n2:], beta)
    if m8 < m:
        _tile4_gemm_nt(a[m8:], b, c[m8:], beta)


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
