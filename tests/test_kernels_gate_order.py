"""The inference step's products in gate order (``kernels/_gate_order.py``): the packing,
the paired product at odd shapes against float64 NumPy, and whole inference calls that
take it against the reference, on one thread and two."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional  # noqa: E402
from kioku.kernels import _pack_cache, numba_lstm  # noqa: E402
from kioku.kernels._gate_order import (  # noqa: E402
    GATE_UNITS,
    gate_panels_shape,
    pack_gate_panels,
    pair_product,
)
from kioku.kernels._packed import LANES, MR, NR  # noqa: E402

# hidden sizes around the panel's 16 units (AVX-512; 4 with AVX2): a partial panel of
# 1, 4, 5, 8, 12, 13 units (one, two, three vectors' worth of gates), exact panels, and
# the benchmark's 200 (12 panels + 8 units)
HIDDEN = [1, 4, 5, 8, 12, 13, 16, 17, 21, 28, 32, 100, 200]


def expected_panels(w: np.ndarray) -> np.ndarray:
    """The gate-order packing written out with NumPy, from its documented rule."""
    H, K = w.shape[0] // 4, w.shape[1]
    step = LANES // 4
    out = np.zeros(gate_panels_shape(K, H), w.dtype)
    for q in range(out.shape[0]):
        u0 = q * GATE_UNITS
        n = min(GATE_UNITS, H - u0)
        width = -(-n // step) * step
        for gate in range(4):
            out[q, :, gate * width : gate * width + n] = w[gate * H + u0 : gate * H + u0 + n].T
    return out


@pytest.mark.parametrize("H", HIDDEN)
@pytest.mark.parametrize("K", [1, 3, 16, 37])
def test_pack_gate_panels_follows_its_rule(H, K):
    w = np.random.default_rng(H * 100 + K).standard_normal((4 * H, K)).astype(np.float32)
    out = np.full(gate_panels_shape(K, H), np.nan, np.float32)  # every element written
    pack_gate_panels(w, out)
    assert out.shape == (-(-H // GATE_UNITS), K, NR)
    assert np.array_equal(out, expected_panels(w))


def packed_pair(rng, B, I, H):
    x = rng.standard_normal((B, I)).astype(np.float32)
    h = rng.standard_normal((B, H)).astype(np.float32)
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
    p_ih = np.empty(gate_panels_shape(I, H), np.float32)
    p_hh = np.empty(gate_panels_shape(H, H), np.float32)
    pack_gate_panels(w_ih, p_ih)
    pack_gate_panels(w_hh, p_hh)
    return x, h, w_ih, w_hh, p_ih, p_hh


@pytest.mark.parametrize("B", range(1, 14))
@pytest.mark.parametrize("H", [1, 5, 13, 21, 28, 100])
def test_pair_product_matches_float64_at_odd_shapes(B, H):
    rng = np.random.default_rng(B * 1000 + H)
    I = 3 + B  # noqa: E741 - the LSTM's input size
    x, h, w_ih, w_hh, p_ih, p_hh = packed_pair(rng, B, I, H)
    a = np.full((B, 4 * H), np.nan, np.float32)
    tile = np.empty((MR, NR), np.float32)
    pair_product(x, p_ih, h, p_hh, a, 0, B, tile)
    want = x.astype(np.float64) @ w_ih.T.astype(np.float64) + h.astype(np.float64) @ w_hh.T
    scale = np.abs(x) @ np.abs(w_ih.T) + np.abs(h) @ np.abs(w_hh.T)  # float32 rounding
    assert np.all(np.abs(a - want) <= 1e-6 * scale + 1e-30), np.abs(a - want).max()


def test_pair_product_rows_do_not_depend_on_their_block_and_leave_other_rows():
    """A row's sums are the same bits whatever rows share its tile (and so whatever the
    thread split); rows outside ``b0:b1`` are not written."""
    rng = np.random.default_rng(5)
    B, I, H = 13, 24, 200
    x, h, _, _, p_ih, p_hh = packed_pair(rng, B, I, H)
    tile = np.empty((MR, NR), np.float32)
    whole = np.empty((B, 4 * H), np.float32)
    pair_product(x, p_ih, h, p_hh, whole, 0, B, tile)
    for b0, b1 in [(0, 1), (3, 4), (2, 9), (5, 13), (12, 13)]:
        part = np.full((B, 4 * H), 7.0, np.float32)
        pair_product(x, p_ih, h, p_hh, part, b0, b1, tile)
        assert np.array_equal(part[b0:b1], whole[b0:b1])
        assert np.all(part[:b0] == 7.0) and np.all(part[b1:] == 7.0)


def direction_args(seed, T, B, I, H, lengths, project, reverse):  # noqa: E741
    rng = np.random.default_rng(seed)
    P = max(1, H // 2) if project else H
    f32 = np.float32
    args = {
        "x": rng.standard_normal((T, B, I)).astype(f32),
        "weight_ih": (rng.standard_normal((4 * H, I)) * 0.3).astype(f32),
        "weight_hh": (rng.standard_normal((4 * H, P)) * 0.3).astype(f32),
        "bias": rng.standard_normal(4 * H).astype(f32),
        "h0": rng.standard_normal((B, P)).astype(f32),
        "c0": rng.standard_normal((B, H)).astype(f32),
        "lengths": rng.integers(1, T + 1, B) if lengths else None,
        "reverse": reverse,
        "weight_hr": (rng.standard_normal((P, H)) * 0.3).astype(f32) if project else None,
    }
    return args


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("B", [4, 5, 7, 8, 9, 13])
@pytest.mark.parametrize("H", [13, 21, 100])
def test_gate_order_inference_matches_reference(monkeypatch, threads, B, H):
    """Batches of at least 4 rows per thread with small weights take the gate-order
    step; every path around it (padding, reverse, projection) against the float32
    reference, and the result the same to 1e-6 whatever the thread count."""
    monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 4)
    for k, (lengths, project, reverse) in enumerate(
        [(False, False, False), (True, False, True), (False, True, False), (True, True, True)]
    ):
        args = direction_args(B * 100 + H + k, 6, B, 11, H, lengths, project, reverse)
        y, h_n, c_n, cache = numba_lstm.lstm_forward(**args, keep_cache=False)
        want = functional.lstm_forward(**args)[:3]
        assert cache is None
        depth = direction_depth(args["x"], args["weight_hh"])
        for name, got, expected in zip(("y", "h_n", "c_n"), (y, h_n, c_n), want):
            assert_close(name, got, expected, depth)


@pytest.mark.slow
def test_gate_order_inference_is_the_same_on_one_and_two_threads(monkeypatch):
    args = direction_args(3, 7, 20, 200, 200, True, False, False)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
        results[threads] = numba_lstm.lstm_forward(**args, keep_cache=False)[:3]
    for one, two in zip(results["1"], results["2"]):
        assert np.array_equal(one, two)


def test_kept_gate_order_panels_follow_weight_changes():
    """The pack cache keeps the gate-order panels apart from the plain ones of the same
    array, and repacks them when the weights are written."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((4 * 100, 64)).astype(np.float32)
    gate = _pack_cache.packed(w, True, True, True)
    plain = _pack_cache.packed(w, True, True)
    assert gate.shape == gate_panels_shape(64, 100) and not np.shares_memory(gate, plain)
    assert _pack_cache.packed(w, True, True, True) is gate
    assert np.array_equal(gate, expected_panels(w))
    w[0, 0] += 1.0  # the first element is always in the sample
    again = _pack_cache.packed(w, True, True, True)
    assert np.array_equal(again, expected_panels(w))
