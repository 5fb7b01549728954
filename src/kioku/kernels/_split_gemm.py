"""A layer's own GEMMs (an output layer's product and its two gradients) split over
kioku's threads, each part on one BLAS thread.

Left to NumPy, a big product runs on OpenBLAS's worker threads, and those keep spinning
on a core for about 0.1 s after it returns (OpenBLAS's ``THREAD_TIMEOUT``, 2^28 cycles):
the LSTM call that comes next (the backward after an output layer's gradients, say) then
shares its two cores with a spinning thread. At (35, 20, 200), idle AMD EPYC, 2 cores, an
LSTM layer's forward took 5.6-6.5 ms and its backward 11.1-13.6 ms right after a
(700, 200) x (200, 10000) product and its gradients on OpenBLAS's threads, 3.2 ms and
5.9 ms after the same products split here (3.1 and 5.9 ms back to back; the same with
``OPENBLAS_THREAD_TIMEOUT=4``, which a library cannot set once NumPy has loaded). Here the
product is cut into contiguous blocks of the output's rows or columns, one per kioku thread (a pool
whose threads sleep when idle); no block cuts the inner dimension, so every element is
the same single-threaded sum it would be whole. Up to :data:`._threads.SMALL_GEMM_MNK`
(``M N K``) the product runs whole on the calling thread, OpenBLAS held to one thread.

Without Numba or a BLAS NumPy's own ``matmul`` runs, held the same way.
"""

from __future__ import annotations

import numpy as np

from . import _blas, _threads

try:  # the `fast` extra
    from ._jit import njit
except ImportError:  # pragma: no cover - exercised by the NumPy-only CI venv
    AVAILABLE = False
else:
    AVAILABLE = _blas.HAVE_BLAS

if AVAILABLE:
    from ._primitives import gemm as _compiled_gemm

    @njit(cache=True, nogil=True)
    def _gemm_share(trans_a, trans_b, a, b, c, beta, part, parts, by_rows):  # pragma: no cover
        """Share ``part`` of ``parts`` of ``c = op(a) @ op(b) + beta c``: a block of
        ``c``'s rows (``by_rows``) or columns."""
        size = c.shape[0] if by_rows else c.shape[1]
        s0, s1 = size * part // parts, size * (part + 1) // parts
        if s1 <= s0:
            return
        if by_rows and trans_a:
            _compiled_gemm(True, trans_b, a[:, s0:s1], b, c[s0:s1], beta)
        elif by_rows:
            _compiled_gemm(False, trans_b, a[s0:s1], b, c[s0:s1], beta)
        elif trans_b:
            _compiled_gemm(trans_a, True, a, b[s0:s1], c[:, s0:s1], beta)
        else:
            _compiled_gemm(trans_a, False, a, b[:, s0:s1], c[:, s0:s1], beta)


def _operand(x: np.ndarray, transposed: bool) -> np.ndarray:
    return x.T if transposed else x


def _compiled_fits(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    arrays = (a, b, c)
    return (
        AVAILABLE
        and a.dtype == b.dtype == c.dtype
        and a.dtype in (np.float32, np.float64)
        and all(x.ndim == 2 and x.strides[1] == x.itemsize and x.strides[0] >= 0 for x in arrays)
    )


def parts_for(m: int, n: int, k: int) -> int:
    """Threads for a product of ``m n k``: 1 up to :data:`._threads.SMALL_GEMM_MNK`, else
    every thread of the budget (no more than the longer side of the output has rows)."""
    if float(m) * n * k <= _threads.SMALL_GEMM_MNK:
        return 1
    return max(1, min(_threads.max_threads(), max(m, n)))


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    *,
    trans_a: bool = False,
    trans_b: bool = False,
    out: np.ndarray | None = None,
    beta: float = 0.0,
    bias: np.ndarray | None = None,
    row_sums: np.ndarray | None = None,
) -> np.ndarray:
    """``out (M, N) = op(a) @ op(b) + beta * out``, ``op`` a transpose where asked:
    ``a (M, K)`` or, with ``trans_a``, ``(K, M)``; ``b (K, N)`` or, with ``trans_b``,
    ``(N, K)``. Without ``out`` a new C-contiguous ``(M, N)`` array (``beta`` must then
    be 0). Then ``bias (N,)``, when given, is added to every row of ``out`` (a layer's
    forward), and ``op(a)``'s row sums are added into ``row_sums (M,)`` when given (a
    layer's bias gradient, ``dy.T`` as ``op(a)``). Split over kioku's threads above
    :data:`._threads.SMALL_GEMM_MNK`, as the module says, each part doing the bias and
    the sums of its own block; ``out`` is written in place, rows of unit stride."""
    left, right = _operand(a, trans_a), _operand(b, trans_b)
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[0]:
        raise ValueError(
            f"a, b: expected op(a) (M, K) and op(b) (K, N), found {left.shape} and {right.shape}"
        )
    m, k, n = left.shape[0], left.shape[1], right.shape[1]
    if out is None:
        if beta != 0.0:
            raise ValueError(f"beta: expected 0 without out, found {beta}")
        out = np.empty((m, n), np.result_type(a, b))
    elif out.shape != (m, n):
        raise ValueError(f"out: expected shape ({m}, {n}), found {out.shape}")
    for name, vector, size in (("bias", bias, n), ("row_sums", row_sums, m)):
        if vector is not None and vector.shape != (size,):
            raise ValueError(f"{name}: expected shape ({size},), found {vector.shape}")
    mnk = float(m) * n * k
    if m == 0 or n == 0:
        return out
    if k == 0 or not _compiled_fits(a, b, out):
        with _threads.small_gemm_threads(mnk):
            product = left @ right
        if beta == 0.0:
            out[...] = product
        else:
            out *= beta
            out += product
        _finish(left, out, bias, row_sums, slice(None), True)
        return out
    parts, by_rows = parts_for(m, n, k), m >= n
    # a bias over a fresh output goes in first, the product then added to it (beta 1): BLAS
    # writes every element of C once either way (beta 0 has it zero C first), and the
    # pass that added the bias after the product is saved (PTB's output layer, (400, 200)
    # x (200, 10000): one read and one write of 16 MB less a step)
    bias_first = bias is not None and beta == 0.0
    scale = out.dtype.type(1.0 if bias_first else beta)

    def share(part: int) -> None:
        size = m if by_rows else n
        block = slice(size * part // parts, size * (part + 1) // parts)
        if bias_first:
            if by_rows:
                out[block] = bias
            else:
                out[:, block] = bias[block]
        _gemm_share(trans_a, trans_b, a, b, out, scale, part, parts, by_rows)
        sums = row_sums if by_rows or part == 0 else None  # by columns: all part 0's
        _finish(left, out, None if bias_first else bias, sums, block, by_rows)

    _threads.run_parts(share, parts, single_blas=mnk > _threads.SOLO_GEMM_MNK)
    return out


def _finish(
    left: np.ndarray,
    out: np.ndarray,
    bias: np.ndarray | None,
    row_sums: np.ndarray | None,
    block: slice,
    by_rows: bool,
) -> None:
    """The bias and the row sums of ``out``'s ``block`` of rows (``by_rows``) or columns;
    with columns, the row sums of all of ``left``."""
    if bias is not None:
        if by_rows:
            out[block] += bias
        else:
            out[:, block] += bias[block]
    if row_sums is not None:
        if by_rows:
            row_sums[block] += left[block].sum(axis=1)
        else:
            row_sums += left.sum(axis=1)
