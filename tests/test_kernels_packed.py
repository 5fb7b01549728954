"""The packed float32 GEMM of the recurrent product (``kernels/_packed.py``) and the LSTM
loops that use it, at sizes that cross panel and row-block boundaries."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional  # noqa: E402
from kioku.kernels import _packed, numba_lstm  # noqa: E402

NR, MR = _packed.NR, _packed.MR


@pytest.mark.parametrize(
    "k,n", [(1, 1), (5, 3), (7, NR), (9, NR + 1), (3, 2 * NR + 5), (40, 130), (64, 3 * NR)]
)
def test_pack_panels_layout(k, n):
    rng = np.random.default_rng(k * 1000 + n)
    w = rng.standard_normal((n, k)).astype(np.float32)  # as weight_hh (N, K)
    panels = -(-n // NR)
    want = np.zeros((panels * NR, k), np.float32)
    want[:n] = w
    want = want.reshape(panels, NR, k).transpose(0, 2, 1)
    for b in (w.T, np.ascontiguousarray(w.T)):  # transposed view and contiguous (K, N)
        out = np.full(_packed.panels_shape(k, n), np.nan, np.float32)
        _packed.pack_panels(b, out)
        assert np.array_equal(out, want)


@pytest.mark.parametrize("m", [1, 2, MR - 1, MR, MR + 1, 2 * MR + 1, 20, 33])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_packed_gemm_matches_float64_product(m, beta):
    rng = np.random.default_rng(m)
    lanes = _packed.LANES  # last panels of 3, 21 and 37 columns: 1, 2 and 3 vectors
    edges = ((9, NR + lanes + 5), (12, 2 * NR + 2 * lanes + 5))
    for k, n in ((1, NR), (17, NR + 3), (64, 3 * NR), (33, 2 * NR - 1), (5, 7), *edges):
        wide = rng.standard_normal((m, k + 3)).astype(np.float32)
        a = wide[:, 1 : k + 1]  # a row slice of a wider array: stride != k
        b = rng.standard_normal((k, n)).astype(np.float32)
        c_wide = rng.standard_normal((m, n + 2)).astype(np.float32)
        c = c_wide[:, :n]
        before = c_wide.copy()
        want = a.astype(np.float64) @ b.astype(np.float64) + beta * c.astype(np.float64)
        panels = np.empty(_packed.panels_shape(k, n), np.float32)
        _packed.pack_panels(b, panels)
        _packed.packed_gemm(a, panels, c, beta, np.empty((MR, NR), np.float32))
        scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64) + np.abs(c)
        assert np.all(np.abs(c - want) <= 4e-7 * (k + 2) * scale + 1e-30), (m, k, n)
        np.testing.assert_array_equal(c_wide[:, n:], before[:, n:])  # beside c: untouched


@pytest.mark.parametrize("m", [1, 4, MR, 2 * MR + 1])
def test_a_partly_filled_last_panel_sums_as_a_full_one(m):
    # the last panel's few columns go through narrower kernels: each element must be
    # the same sum, bit for bit, as in a product whose panels are all full
    rng = np.random.default_rng(m)
    k = 50
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, 3 * NR)).astype(np.float32)
    full = np.empty((m, 3 * NR), np.float32)
    panels = np.empty(_packed.panels_shape(k, 3 * NR), np.float32)
    _packed.pack_panels(b, panels)
    _packed.packed_gemm(a, panels, full, 0.0, np.empty((MR, NR), np.float32))
    for n in range(2 * NR + 1, 3 * NR):
        part = np.empty((m, n), np.float32)
        panels = np.empty(_packed.panels_shape(k, n), np.float32)
        _packed.pack_panels(np.ascontiguousarray(b[:, :n]), panels)
        _packed.packed_gemm(a, panels, part, 0.0, np.empty((MR, NR), np.float32))
        assert np.array_equal(part, full[:, :n]), n


@pytest.mark.parametrize("full", [1, 2, MR - 1, MR, MR + 1, 2 * MR + 2])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_one_row_against_many_panels_sums_as_every_row_does(full, beta):
    # a single row takes up to MR panels per pass; its sums must be bit for bit those of
    # the same row inside a larger block (so results never depend on the batch split)
    rng = np.random.default_rng(full)
    k, n = 37, full * NR + 5
    a = rng.standard_normal((MR, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c0 = rng.standard_normal((MR, n)).astype(np.float32)
    panels = np.empty(_packed.panels_shape(k, n), np.float32)
    _packed.pack_panels(b, panels)
    tile = np.empty((MR, NR), np.float32)
    block = c0.copy()
    _packed.packed_gemm(a, panels, block, beta, tile)
    for r in range(MR):
        row = c0[r : r + 1].copy()
        _packed.packed_gemm(a[r : r + 1], panels, row, beta, tile)
        assert np.array_equal(row[0], block[r]), (full, r)
    want = a.astype(np.float64) @ b.astype(np.float64) + beta * c0.astype(np.float64)
    assert_close("block", block, want, depth=k + 1)  # k products and beta * c0, summed


def _case(seed, batch, hidden, project):
    rng = np.random.default_rng(seed)
    T, I, H = 6, 5, hidden
    P = H // 2 if project else H

    def arr(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    args = dict(
        x=arr(T, batch, I, scale=1.0),
        weight_ih=arr(4 * H, I),
        weight_hh=arr(4 * H, P),
        bias=arr(4 * H) if seed % 4 else None,
        h0=arr(batch, P),
        c0=arr(batch, H),
        lengths=rng.integers(1, T + 1, batch) if seed % 2 else None,
        reverse=bool(seed % 3 == 0),
        weight_hr=arr(P, H) if project else None,
    )
    return args, arr(T, batch, P, scale=1.0)


def _close(got, want, depth, name=""):
    """float32 agreement within the rounding of ``depth`` roundings (tests/tolerance.py),
    relative to the array's scale (these reach a few units)."""
    assert_close(name, got, want, depth)


@pytest.mark.parametrize("projection", ["fused", "packed", "blas"])
@pytest.mark.parametrize("seed", range(6))
def test_lstm_float32_with_full_panels_matches_reference(monkeypatch, seed, projection):
    """4H and P span several panels and a partial one; batches span several row blocks;
    the input projection per step (``fused``) or as one GEMM before the loop, by the
    packed kernel or by BLAS."""
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 1 if projection == "fused" else 10**9)
    monkeypatch.setattr(numba_lstm, "PACKED_PROJECTION_MNK", 0 if projection == "blas" else 10**12)
    batch, hidden = ((1, 40), (7, 33), (13, 20), (20, 48), (3, 70), (2 * MR + 1, 17))[seed]
    args, dy = _case(seed, batch, hidden, project=seed in (1, 4))
    y, h_n, c_n, cache = numba_lstm.lstm_forward(**args)
    y_r, h_r, c_r, cache_r = functional.lstm_forward(**args)
    depth = direction_depth(args["x"], args["weight_hh"])
    for got, want in ((y, y_r), (h_n, h_r), (c_n, c_r), (cache.c_state, cache_r.c_state)):
        _close(got, want, depth)
    y_i, h_i, c_i, none = numba_lstm.lstm_forward(**args, keep_cache=False)
    assert none is None
    for got, want in ((y_i, y_r), (h_i, h_r), (c_i, c_r)):
        _close(got, want, depth)
    grads = numba_lstm.lstm_backward(dy, cache)
    grads_r = functional.lstm_backward(dy, cache_r)
    for name, got, want in zip(grads_r._fields, grads, grads_r):
        assert (got is None) == (want is None), name
        if got is not None:
            _close(got, want, depth, name)


def test_vector_width_follows_the_features_numba_compiles_for(monkeypatch):
    # NUMBA_CPU_FEATURES (say, AVX2 code built on an AVX-512 host) decides the width, as
    # it decides Numba's code; without it, the host's features do
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+avx2,+fma")
    assert _packed._target_has_avx512() is False
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+fma,+avx512f,+avx512bw")
    assert _packed._target_has_avx512() is True
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    from llvmlite import binding

    host = bool(binding.get_host_cpu_features().get("avx512f", False))
    assert _packed._target_has_avx512() is host
    # the tile in force: its accumulators and the panel's vectors fit the registers
    registers = 32 if _packed.LANES == 16 else 16
    assert _packed.MR * _packed.NR_VECS + _packed.NR_VECS + 1 <= registers
