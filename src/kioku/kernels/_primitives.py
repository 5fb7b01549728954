"""Compiled building blocks for the LSTM loops: GEMM into preallocated buffers and
SIMD-friendly activations.

``gemm_nt(a, b, c, beta)`` computes ``c = a @ b.T + beta * c`` and ``gemm_nn`` computes
``c = a @ b + beta * c`` for C-contiguous 2-D arrays, through the BLAS of
:mod:`kioku.kernels._blas` when there is one. ``fast_tanh``/``fast_sigmoid`` use, for
float32, a rational approximation of tanh (absolute error below 3e-7, the one Eigen
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

ROW, NT, T = _blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS


def _blas_gemm(trans_b, a, b, c, beta):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@overload(_blas_gemm)
def _blas_gemm_impl(trans_b, a, b, c, beta):
    fn = _sgemm if a.dtype == types.float32 else _dgemm

    def impl(trans_b, a, b, c, beta):
        m, k = a.shape
        n = c.shape[1]
        tb = T if trans_b else NT
        fn(
            ROW,
            NT,
            tb,
            m,
            n,
            k,
            1.0,
            a.ctypes.data,
            k,
            b.ctypes.data,
            b.shape[1],
            beta,
            c.ctypes.data,
            n,
        )

    return impl


@njit(cache=True, nogil=True)
def _loop_gemm(trans_b, a, b, c, beta):
    m, k = a.shape
    n = c.shape[1]
    for i in range(m):
        for j in range(n):
            c[i, j] *= beta
        for p in range(k):
            a_ip = a[i, p]
            if trans_b:
                for j in range(n):
                    c[i, j] += a_ip * b[j, p]
            else:
                for j in range(n):
                    c[i, j] += a_ip * b[p, j]


if _blas.HAVE_BLAS:

    @njit(cache=True, nogil=True)
    def gemm_nt(a, b, c, beta):
        """``c (M, N) = a (M, K) @ b (N, K).T + beta * c``."""
        _blas_gemm(True, a, b, c, beta)

    @njit(cache=True, nogil=True)
    def gemm_nn(a, b, c, beta):
        """``c (M, N) = a (M, K) @ b (K, N) + beta * c``."""
        _blas_gemm(False, a, b, c, beta)

else:

    @njit(cache=True, nogil=True)
    def gemm_nt(a, b, c, beta):
        """``c (M, N) = a (M, K) @ b (N, K).T + beta * c``."""
        _loop_gemm(True, a, b, c, beta)

    @njit(cache=True, nogil=True)
    def gemm_nn(a, b, c, beta):
        """``c (M, N) = a (M, K) @ b (K, N) + beta * c``."""
        _loop_gemm(False, a, b, c, beta)


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
            x = min(max(x, lo), hi)
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
