"""A layer's GEMMs split over kioku's threads (kernels/_split_gemm.py): the same product
as NumPy's whatever the split, written in place where asked, and routed off OpenBLAS's
own threads."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close  # noqa: E402

import kioku  # noqa: E402
from kioku.kernels import _blas, _split_gemm, _threads  # noqa: E402

needs_blas = pytest.mark.skipif(not _split_gemm.AVAILABLE, reason="no BLAS found for Numba")


@pytest.fixture
def threads(monkeypatch):
    """Split every product (``SMALL_GEMM_MNK`` 0) over ``n`` threads."""
    monkeypatch.delenv("KIOKU_NUM_THREADS", raising=False)

    def set_threads(n: int) -> None:
        monkeypatch.setattr(_threads, "SMALL_GEMM_MNK", 0.0)
        monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(n)))

    return set_threads


def _operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _want(a, b, trans_a, trans_b, c=None, beta=0.0):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    product = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    return product if c is None else product + beta * c.astype(np.float64)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize(("m", "n"), [(37, 11), (11, 37)])  # split by rows, by columns
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_split_products_match_numpy(threads, dtype, trans_a, trans_b, m, n, parts):
    threads(parts)
    rng = np.random.default_rng(m * 7 + n + parts)
    k = 29
    a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    got = _split_gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == (m, n) and got.dtype == dtype and got.flags.c_contiguous
    assert_close("product", got, _want(a, b, trans_a, trans_b), k, dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    start = c.copy()
    same = _split_gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=c, beta=1.0)
    assert same is c
    assert_close("accumulated", c, _want(a, b, trans_a, trans_b, start, 1.0), k + 1, dtype)
    bias = rng.standard_normal(n).astype(dtype)
    sums = rng.standard_normal(m).astype(dtype)
    sums_before = sums.copy()
    c = _split_gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, row_sums=sums)
    assert_close("with bias", c, _want(a, b, trans_a, trans_b) + bias, k + 1, dtype)
    left = (a.T if trans_a else a).astype(np.float64)
    assert_close("row sums", sums, sums_before + left.sum(axis=1), k + 1, dtype)
    # beta 0 puts the bias in first and adds the product to it; beta 1 adds both to out
    c = start.copy()
    _split_gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=c, beta=1.0, bias=bias)
    want = _want(a, b, trans_a, trans_b, start, 1.0) + bias
    assert_close("accumulated with bias", c, want, k + 2, dtype)


@needs_blas
def test_blocks_of_strided_operands_and_outputs(threads):
    """Column slices (rows of unit stride, longer row strides) as every operand: each part
    reads and writes only its own block."""
    threads(2)
    rng = np.random.default_rng(3)
    big_a = rng.standard_normal((40, 50)).astype(np.float32)
    big_b = rng.standard_normal((30, 60)).astype(np.float32)
    big_c = rng.standard_normal((40, 70)).astype(np.float32)
    a, b = big_a[:, 5:35], big_b[:, 7:52]  # (40, 30) @ (30, 45)
    before = big_c.copy()
    c = big_c[:, 10:55]
    _split_gemm.gemm(a, b, out=c, beta=0.5)
    assert_close("block", c, _want(a, b, False, False, before[:, 10:55], 0.5), 31)
    np.testing.assert_array_equal(big_c[:, :10], before[:, :10])  # untouched around it
    np.testing.assert_array_equal(big_c[:, 55:], before[:, 55:])


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_without_the_compiled_path_numpy_computes_the_same(threads, monkeypatch, beta):
    threads(2)
    rng = np.random.default_rng(4)
    a, b = _operands(rng, 13, 17, 19, True, False, np.float32)
    c = rng.standard_normal((13, 17)).astype(np.float32)
    want = _want(a, b, True, False, c, beta)
    monkeypatch.setattr(_split_gemm, "AVAILABLE", False)
    bias, sums = np.ones(17, np.float32), np.zeros(13, np.float32)
    _split_gemm.gemm(a, b, trans_a=True, out=c, beta=beta, bias=bias, row_sums=sums)
    assert_close("fallback", c, want + 1.0, 21)
    assert_close("fallback row sums", sums, a.astype(np.float64).sum(axis=0), 19)


def test_bad_arguments_are_named():
    a, b = np.ones((3, 4), np.float32), np.ones((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"a, b: expected op\(a\) \(M, K\).*\(3, 4\) and \(5, 6\)"):
        _split_gemm.gemm(a, b)
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 6\), found \(6, 3\)"):
        _split_gemm.gemm(a, np.ones((4, 6), np.float32), out=np.empty((6, 3), np.float32))
    with pytest.raises(ValueError, match="beta: expected 0 without out, found 1.0"):
        _split_gemm.gemm(a, np.ones((4, 6), np.float32), beta=1.0)
    with pytest.raises(ValueError, match=r"bias: expected shape \(6,\), found \(3,\)"):
        _split_gemm.gemm(a, np.ones((4, 6), np.float32), bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"row_sums: expected shape \(3,\), found \(6,\)"):
        _split_gemm.gemm(a, np.ones((4, 6), np.float32), row_sums=np.ones(6, np.float32))


@needs_blas
@pytest.mark.skipif(
    _blas.DEFAULT_THREADS is None or _blas._set_local is None,
    reason="needs an OpenBLAS that reports and sets its thread count",
)
def test_a_big_output_layer_splits_over_kiokus_threads_on_one_blas_thread_each(
    threads, monkeypatch
):
    """Above SMALL_GEMM_MNK each of the Linear's three GEMMs runs as parts on kioku's
    threads, every part seeing OpenBLAS held to one thread (never OpenBLAS's own workers,
    which would spin on the cores afterwards); NumPy gets its count back."""
    threads(2)
    seen: list[tuple[int, int | None]] = []
    share = _split_gemm._gemm_share

    def watched(*args):
        seen.append((args[6], _blas.current_threads()))  # (part, BLAS threads in the part)
        share(*args)

    monkeypatch.setattr(_split_gemm, "_gemm_share", watched)
    layer = kioku.nn.Linear(64, 300, rng=0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 64)).astype(np.float32)
    dy = rng.standard_normal((50, 300)).astype(np.float32)
    y = layer(x)
    dx = layer.backward(dy)
    assert sorted(seen) == [(0, 1)] * 3 + [(1, 1)] * 3
    assert _blas.current_threads() == _blas.DEFAULT_THREADS
    w = layer.params["weight"]
    assert_close("y", y, x.astype(np.float64) @ w.T + layer.params["bias"], 65)
    assert_close("dx", dx, dy.astype(np.float64) @ w, 300)
    assert_close("dw", layer.grads["weight"], dy.T.astype(np.float64) @ x, 50)
