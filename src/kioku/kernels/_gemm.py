"""The BLAS GEMM the compiled kernels call, into preallocated buffers.

``gemm(trans_a, trans_b, a, b, c, beta)`` computes ``c = op(a) @ op(b) + beta * c``;
``gemm_nt(a, b, c, beta)`` is ``c = a @ b.T + beta * c`` and ``gemm_nn`` ``c = a @ b +
beta * c``, for 2-D arrays of unit stride along their rows, through the BLAS of
:mod:`kioku.kernels._blas` when there is one: NumPy's OpenBLAS, or oneMKL for products
of at least ``MKL_MIN_MNK`` (``M N K``; tuned on the machine where the ``mkl`` extra is
installed, :mod:`._tuning`; never by default), read by the compiled code from a C
integer at each call (:mod:`._cells`). Without a BLAS, a compiled triple loop.
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
from numba import types
from numba.extending import overload

from . import _blas, _tuning
from ._cells import int_cell
from ._jit import njit

HAVE_BLAS = _blas.HAVE_BLAS
ROW, NT, T = _blas.ROW_MAJOR, _blas.NO_TRANS, _blas.TRANS

if HAVE_BLAS:
    llvm_binding.load_library_permanently(_blas.LIBRARY)
    _int = types.int64 if _blas.INT64 else types.int32
    _ptr, _i32 = types.intp, types.int32

    def _gemm_type(real):
        args = (_i32, _i32, _i32, _int, _int, _int, real, _ptr, _int, _ptr, _int, real, _ptr, _int)
        return types.void(*args)

    _sgemm = types.ExternalFunction(_blas.SGEMM_SYMBOL, _gemm_type(types.float32))
    _dgemm = types.ExternalFunction(_blas.DGEMM_SYMBOL, _gemm_type(types.float64))
    # oneMKL's GEMMs under kioku's own names: MKL's addresses where the `mkl` extra is
    # installed, else OpenBLAS's again (the compiled code always links; MKL_MIN_MNK then
    # stays at "never")
    _mkl = _blas.MKL
    for _name, _symbol, _address in (
        ("kioku_mkl_sgemm", _blas.SGEMM_SYMBOL, _mkl.sgemm if _mkl else 0),
        ("kioku_mkl_dgemm", _blas.DGEMM_SYMBOL, _mkl.dgemm if _mkl else 0),
    ):
        _fallback = llvm_binding.address_of_symbol(_symbol)
        llvm_binding.add_symbol(_name, _address or _fallback)
    _sgemm_mkl = types.ExternalFunction("kioku_mkl_sgemm", _gemm_type(types.float32))
    _dgemm_mkl = types.ExternalFunction("kioku_mkl_dgemm", _gemm_type(types.float64))

# Products with M * N * K at least this run on oneMKL (where installed): tuned per machine
MKL_MIN_MNK = _tuning.current("MKL_MIN_MNK")  # by hand: never (NO_LIMIT)
_mkl_cell, _mkl_min_mnk = int_cell("kioku_mkl_min_mnk")


def sync_tuned() -> None:
    """Copy ``MKL_MIN_MNK`` (as set on this module) to where the compiled code reads it;
    never where MKL is not installed."""
    limit = MKL_MIN_MNK if HAVE_BLAS and _blas.MKL is not None else 1 << 62
    _mkl_cell.value = int(min(limit, 1 << 62))


sync_tuned()


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
    fn, fn_mkl = (_sgemm, _sgemm_mkl) if a.dtype == types.float32 else (_dgemm, _dgemm_mkl)

    def impl(trans_a, trans_b, a, b, c, beta):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        ta, tb = (T if trans_a else NT), (T if trans_b else NT)
        lda, ldb, ldc = _leading(a), _leading(b), _leading(c)
        a_ptr, b_ptr, c_ptr = a.ctypes.data, b.ctypes.data, c.ctypes.data
        if m * n * k >= _mkl_min_mnk():
            fn_mkl(ROW, ta, tb, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc)
        else:
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
