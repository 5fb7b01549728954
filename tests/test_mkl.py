"""oneMKL as a second GEMM for kioku's own products (the ``mkl`` extra, kernels/_blas.py):
found where the wheel puts it, bound on its sequential layer, called by the compiled code
for products of at least ``MKL_MIN_MNK`` (a C integer read at each call), measured by the
tuning, and part of the machine's identity. Where the extra is not installed the tests
that call MKL skip saying so; CI installs it."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, recurrent_depth  # noqa: E402

from kioku import nn  # noqa: E402
from kioku.kernels import (  # noqa: E402
    _blas,
    _gemm,
    _split_gemm,
    _threads,
    _tuning,
    _tuning_probes,
    _tuning_store,
    numba_lstm,
)
from kioku.kernels._tuning_choices import NO_LIMIT  # noqa: E402

needs_mkl = pytest.mark.skipif(
    _blas.MKL is None, reason="oneMKL not installed here (pip install -e '.[mkl]')"
)
needs_blas = pytest.mark.skipif(not _blas.HAVE_BLAS, reason="no BLAS found for Numba")

_I64 = ctypes.c_int64
_GEMM = ctypes.CFUNCTYPE(
    None, ctypes.c_int, ctypes.c_int, ctypes.c_int, _I64, _I64, _I64, ctypes.c_float,
    ctypes.c_void_p, _I64, ctypes.c_void_p, _I64, ctypes.c_float, ctypes.c_void_p, _I64,
)  # fmt: skip


def _direct(address: int, trans_a: bool, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``c = op(a) @ b`` by a 64-bit CBLAS sgemm at ``address``, row-major."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    _GEMM(address)(
        _blas.ROW_MAJOR, _blas.TRANS if trans_a else _blas.NO_TRANS, _blas.NO_TRANS, m, n, k,
        1.0, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], 0.0, c.ctypes.data, n,
    )  # fmt: skip


@pytest.fixture
def mkl_from(monkeypatch):
    """Put ``MKL_MIN_MNK`` at ``limit`` for the test (restored, and synced, after)."""

    def put(limit: int) -> None:
        monkeypatch.setattr(_gemm, "MKL_MIN_MNK", limit)
        _gemm.sync_tuned()

    yield put
    monkeypatch.undo()
    _gemm.sync_tuned()


def test_the_wheel_layout_is_searched(tmp_path, monkeypatch) -> None:
    (tmp_path / "lib").mkdir()
    library = tmp_path / "lib" / "libmkl_rt.so.3"
    library.write_bytes(b"not a library")
    monkeypatch.setattr(_blas.sys, "prefix", str(tmp_path))
    assert str(library) in _blas.mkl_candidates()
    # a file that is no library is passed over; a library already loaded in this process
    # (NumPy's OpenBLAS here: as an MKL that NumPy was built on would be) is left alone
    assert _blas.find_mkl([str(library)]) is None
    if _blas.LIBRARY is not None:
        assert _blas.find_mkl([_blas.LIBRARY]) is None
    assert _blas.find_mkl([]) is None


def test_kioku_mkl_off_turns_it_off(monkeypatch) -> None:
    monkeypatch.setenv("KIOKU_MKL", "off")
    assert _blas.find_mkl() is None


@needs_blas
def test_without_mkl_the_threshold_stays_at_never(monkeypatch, mkl_from) -> None:
    monkeypatch.setattr(_blas, "MKL", None)
    mkl_from(0)
    assert _gemm._mkl_cell.value == 1 << 62
    levels, note = _tuning_probes.mkl_gemm(_tuning.CHOICES["MKL_MIN_MNK"], None, 1.0)
    assert levels == [] and "not installed" in note


def test_the_machine_identity_names_mkl(monkeypatch) -> None:
    monkeypatch.setattr(_blas, "MKL", None)
    without = _tuning_store.machine()
    assert without["versions"]["mkl"] is None
    fake = _blas.MklBinding("/x/libmkl_rt.so.3", 1, 2, "oneMKL 2026.2")
    monkeypatch.setattr(_blas, "MKL", fake)
    assert _tuning_store.machine()["versions"]["mkl"] == "oneMKL 2026.2"
    assert _tuning_store.key() != _tuning_store.key(without)  # installing it: tune again


@needs_mkl
def test_the_threshold_routes_each_product(mkl_from) -> None:
    """At ``M N K`` from the threshold on, the compiled GEMM is MKL's bit for bit, below it
    OpenBLAS's; on these operands the two differ (else the test could not tell)."""
    rng = np.random.default_rng(0)
    k, m, n = 400, 96, 200  # the TN case: an output layer's weight gradient
    a = rng.standard_normal((k, m)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    by_mkl, by_openblas, got = (np.empty((m, n), np.float32) for _ in range(3))
    _direct(_blas.MKL.sgemm, True, a, b, by_mkl)
    openblas = ctypes.cast(getattr(_blas._lib, _blas.SGEMM_SYMBOL), ctypes.c_void_p).value
    _direct(openblas, True, a, b, by_openblas)
    assert not np.array_equal(by_mkl, by_openblas)
    for limit, want in ((m * n * k, by_mkl), (m * n * k + 1, by_openblas), (0, by_mkl)):
        mkl_from(limit)
        _threads.run_parts(lambda part: _gemm.gemm(True, False, a, b, got, 0.0), 1)
        np.testing.assert_array_equal(got, want)


@needs_mkl
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_split_products_on_mkl(monkeypatch, mkl_from, parts) -> None:
    """An output layer's three products split over threads on MKL: within float32
    rounding of float64, and the same bits whatever the split."""
    monkeypatch.setattr(_threads, "SMALL_GEMM_MNK", 0.0)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(parts)))
    monkeypatch.delenv("KIOKU_NUM_THREADS", raising=False)
    mkl_from(0)
    rng = np.random.default_rng(parts)
    y = rng.standard_normal((120, 64)).astype(np.float32)
    w = rng.standard_normal((300, 64)).astype(np.float32)
    dz = rng.standard_normal((120, 300)).astype(np.float32)
    y64, w64, dz64 = (v.astype(np.float64) for v in (y, w, dz))
    products = {
        "logits": (_split_gemm.gemm(y, w, trans_b=True), y64 @ w64.T, 64),
        "weight gradient": (_split_gemm.gemm(dz, y, trans_a=True), dz64.T @ y64, 120),
        "input gradient": (_split_gemm.gemm(dz, w), dz64 @ w64, 300),
    }
    for name, (got, want, depth) in products.items():
        assert_close(name, got, want, depth)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0})
    whole = _split_gemm.gemm(dz, y, trans_a=True)
    np.testing.assert_array_equal(whole, products["weight gradient"][0])


@needs_mkl
def test_an_lstm_layer_trains_on_mkl_as_on_openblas(monkeypatch, mkl_from) -> None:
    """A layer whose projection and weight gradients run on BLAS (not the packed kernel):
    its outputs and every gradient on MKL within float32 rounding of OpenBLAS's run."""
    monkeypatch.setattr(numba_lstm, "PACKED_PROJECTION_MNK", 0)
    monkeypatch.setattr(numba_lstm, "PACKED_GRADS_MAX_BYTES", 0)
    T, B, H = 12, 8, 48
    x = np.random.default_rng(1).standard_normal((T, B, H)).astype(np.float32)
    dy = np.random.default_rng(2).standard_normal((T, B, H)).astype(np.float32)
    runs = []
    for limit in (NO_LIMIT, 0):
        mkl_from(limit)
        layer = nn.LSTM(H, H, rng=np.random.default_rng(0))
        y, _ = layer(x)
        dx = layer.backward(dy)[0]
        runs.append({"y": y, "dx": dx, **{n: g.copy() for n, _, g in layer.named_parameters()}})
    # two float32 runs, each within its roundings of the exact result: their difference is
    # two independent random walks of that depth, one of twice the depth (tests/tolerance.py)
    depth = recurrent_depth(T, H, H, batch=B)
    for name in runs[0]:
        assert_close(name, runs[1][name], runs[0][name], 2 * depth)


@needs_mkl
def test_the_probe_times_both_libraries() -> None:
    clock = _tuning_probes.Clock(block_s=0.0, rounds=1)
    levels, note = _tuning_probes.mkl_gemm(_tuning.CHOICES["MKL_MIN_MNK"], clock, 0.1)
    assert note is None and len(levels) == len(_tuning.CHOICES["MKL_MIN_MNK"].candidates)
    assert all(level["on_s"] > 0 and level["off_s"] > 0 for level in levels)
    assert _gemm.MKL_MIN_MNK == _tuning.current("MKL_MIN_MNK")  # restored after
