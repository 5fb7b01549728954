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
        lda, ldb = a.shape[1], b.shape[1]
        a_ptr, b_ptr, c_ptr = a.ctypes.data, b.ctypes.data, c.ctypes.data
        fn(ROW, ta, tb, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, beta, c_ptr, n)

    return impl


@njit(cache=True, nogil=True)
def gemm(trans_a, trans_b, a, b, c, beta):
    """``c (M, N) = op(a) @ op(b) + beta * c`` with ``op`` a transpose when asked; all
    2-D with unit stride along rows (row slices of C-contiguous arrays are fine)."""
    _blas_gemm(trans_a, trans_b, a, b, c, beta)


@njit(cache=True, nogil=True)
def gemm_nn(a, b, c, beta):
    """``c (M, N) = a (M, K) @ b (K, N) + beta * c``."""
    gemm(False, False, a, b, c, beta)


@njit(cache=True, nogil=True)
def gemm_nt(a, b, c, beta):
    """``c (M, N) = a (M, K) @ b (N, K).T + beta * c``."""
    gemm(False, True, a, b, c, beta)


SMALL_ROWS = 2  # up to this many rows, a compiled AXPY loop beats a BLAS call


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def _axpy_gemm_nn(a, b, c, beta):
    m, k = a.shape
    n = c.shape[1]
    k4 = k - k % 4
    for i in range(m):
        row = c[i]
        if beta == 0:
            for j in range(n):
                row[j] = 0
        for p in range(0, k4, 4):  # four rows of b per pass: one load and store of c
            a0, a1, a2, a3 = a[i, p], a[i, p + 1], a[i, p + 2], a[i, p + 3]
            b0, b1, b2, b3 = b[p], b[p + 1], b[p + 2], b[p + 3]
            for j in range(n):
                row[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        for p in range(k4, k):
            a_ip = a[i, p]
            b_row = b[p]
            for j in range(n):
                row[j] += a_ip * b_row[j]


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


@njit(cache=True, nogil=True)
def step_gemm_nn(a, b, c, beta):
    """``c (M, N) = a (M, K) @ b (K, N) + beta * c`` (``beta`` 0 or 1) for one time step:
    BLAS, or for a few rows (batch 1) a vectorised loop without BLAS's per-call overhead."""
    if a.shape[0] <= SMALL_ROWS:
        _axpy_gemm_nn(a, b, c, beta)
    else:
        gemm(False, False, a, b, c, beta)


@njit(cache=True, nogil=True)
def step_gemm_nt(a, b, b_t, c, beta):
    """``c (M, N) = a (M, K) @ b (N, K).T + beta * c`` for one time step. ``b_t (K, N)``
    is ``b`` transposed and C-contiguous, for BLAS (which runs faster on it); for a few
    rows the dot-product loop reads ``b`` directly and ``b_t`` is not used."""
    if a.shape[0] <= SMALL_ROWS:
        _dot_gemm_nt(a, b, c, beta)
    else:
        gemm(False, False, a, b_t, c, beta)


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
