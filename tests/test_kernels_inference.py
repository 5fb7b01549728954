"""The compiled forward without a cache (``keep_cache=False``) against the reference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from cases import lstm_direction_case, peak_bytes  # noqa: E402
from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional  # noqa: E402
from kioku.kernels import _primitives, _threads, numba_lstm  # noqa: E402


def make_args(seed, dtype=None, batch=None, steps=None, lengths=None, project=None):
    """Random arguments of one direction (:func:`cases.lstm_direction_case`'s)."""
    return lstm_direction_case(seed, dtype, batch, steps, lengths, project)[0]


def check_inference(args):
    y, h_n, c_n, cache = numba_lstm.lstm_forward(**args, keep_cache=False)
    want = functional.lstm_forward(**args)[:3]
    assert cache is None
    depth = direction_depth(args["x"], args["weight_hh"])
    for name, got, expected in zip(("y", "h_n", "c_n"), (y, h_n, c_n), want):
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        assert_close(name, got, expected, depth, expected.dtype)


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations_match_reference(seed):
    check_inference(make_args(seed))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("project", [False, True])
def test_every_path_matches_reference_float32(reverse, lengths, project):
    for seed in range(4):
        args = make_args(500 + seed, np.float32, batch=5, steps=6, lengths=lengths, project=project)
        args["reverse"] = reverse
        check_inference(args)


def test_all_full_lengths_take_the_direct_path_and_match():
    args = make_args(7, np.float32, batch=4, steps=5, lengths=False, project=False)
    args["lengths"] = np.full(4, 5)
    check_inference(args)


@pytest.mark.parametrize("batch", [1, 2])
def test_small_batch_matches_reference(batch):
    for seed in range(6):
        check_inference(make_args(600 + seed, batch=batch, steps=4))


@pytest.mark.parametrize("threads", [2, 3])
def test_batch_split_matches_reference(monkeypatch, threads):
    monkeypatch.setenv("KIOKU_NUM_THREADS", str(threads))
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    for seed in range(8):
        check_inference(make_args(700 + seed, batch=9))


def test_tiled_recurrent_gemm_matches_reference(monkeypatch):
    monkeypatch.setattr(_primitives, "L2_BYTES", 0)
    for seed in range(6):
        check_inference(make_args(800 + seed, batch=(9, 13, 3)[seed % 3]))


def test_inputs_are_not_modified():
    args = make_args(9, np.float32, batch=3, steps=4)
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    numba_lstm.lstm_forward(**args, keep_cache=False)
    for name, value in before.items():
        assert np.array_equal(args[name], value), name


def test_uncompiled_dtypes_fall_back_without_a_cache():
    args = make_args(10, np.float32, batch=2, steps=3)
    args = {k: (v.astype(np.float16) if isinstance(v, np.ndarray) and k != "lengths" else v)
            for k, v in args.items()}  # fmt: skip
    y, h_n, c_n, cache = numba_lstm.lstm_forward(**args, keep_cache=False)
    assert cache is None
    want = functional.lstm_forward(**args)[:3]
    for got, expected in zip((y, h_n, c_n), want):
        assert np.array_equal(got, expected)


def test_rnn_forward_without_cache_matches_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    w_ih = rng.standard_normal((6, 4)).astype(np.float32)
    w_hh = rng.standard_normal((6, 6)).astype(np.float32)
    y, h_n, cache = numba_lstm.rnn_forward(x, w_ih, w_hh, lengths=np.array([5, 2, 4]))
    y2, h2, none = numba_lstm.rnn_forward(
        x, w_ih, w_hh, lengths=np.array([5, 2, 4]), keep_cache=False
    )
    assert isinstance(cache, functional.RNNCache) and none is None
    assert np.array_equal(y, y2) and np.array_equal(h_n, h2)


def test_inference_keeps_no_per_step_state():
    T, B, H = 64, 8, 32
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w_ih = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.2
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.2
    numba_lstm.lstm_forward(x, w_ih, w_hh, keep_cache=False)  # compiled before measuring
    numba_lstm.lstm_forward(x, w_ih, w_hh)
    with_cache = peak_bytes(lambda: numba_lstm.lstm_forward(x, w_ih, w_hh))
    without = peak_bytes(lambda: numba_lstm.lstm_forward(x, w_ih, w_hh, keep_cache=False))
    history = 3 * T * B * H * 4  # h_state, c_state and tanh_c of every step (float32)
    assert without <= with_cache - 0.9 * history
    # what remains: the input projection (T, B, 4H), the output (T, B, H), a few states
    assert without <= 1.1 * (T * B * 5 * H * 4) + 64 * 1024


@pytest.mark.parametrize("solo", [0, 1 << 60])
def test_blas_pinned_or_not_gives_the_same_results(monkeypatch, solo):
    monkeypatch.setattr(_threads, "SOLO_GEMM_MNK", solo)  # 0: always pin BLAS to one thread
    monkeypatch.setenv("KIOKU_NUM_THREADS", "1")
    for seed in range(6):
        check_inference(make_args(900 + seed))


def _spy_fused(monkeypatch):
    """Record whether each inference call's loop projects per step (``fused``, its last
    argument, through either entry)."""
    seen = []
    for name in ("lstm_infer_loop", "infer_one_part"):
        original = getattr(numba_lstm, name)

        def spy(*args, original=original):
            seen.append(args[-1])
            return original(*args)

        monkeypatch.setattr(numba_lstm, name, spy)
    return seen


@pytest.mark.parametrize("fused", [False, True])
def test_a_zero_first_state_gives_what_its_product_gives(monkeypatch, fused):
    """Rows entering the first step with a zero state skip its product (zeros) when every
    row of the thread's part does: bit for bit what the rows get when another row's
    nonzero state makes the part compute it, with the projection before the loop and
    per step (the gate-order kernel, which sums one term of it)."""
    monkeypatch.setenv("KIOKU_NUM_THREADS", "1")
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", 1 << 30 if fused else 0)
    seen = _spy_fused(monkeypatch)
    rng = np.random.default_rng(5)
    T, B, I, H = 7, 8, 19, 37
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih, w_hh = (rng.standard_normal((4 * H, n)).astype(np.float32) * 0.3 for n in (I, H))
    bias = rng.standard_normal(4 * H).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32)
    for reverse in (False, True):
        skipped = numba_lstm.lstm_forward(
            x, w_ih, w_hh, bias, None, c0, reverse=reverse, keep_cache=False
        )
        h0[-1] = rng.standard_normal(H)
        computed = numba_lstm.lstm_forward(
            x, w_ih, w_hh, bias, h0, c0, reverse=reverse, keep_cache=False
        )
        h0[-1] = 0
        for got, want in zip(skipped[:3], computed[:3]):
            assert np.array_equal(got[..., : B - 1, :], want[..., : B - 1, :])
    assert set(seen) == {fused}
    # one sequence (its own loop, one row): the same as the same row in a batch of two
    one = numba_lstm.lstm_forward(x[:, :1], w_ih, w_hh, bias, None, c0[:1], keep_cache=False)
    two_h0 = np.stack([np.zeros(H, np.float32), rng.standard_normal(H).astype(np.float32)])
    two = numba_lstm.lstm_forward(x[:, :2], w_ih, w_hh, bias, two_h0, c0[:2], keep_cache=False)
    for got, want in zip(one[:3], two[:3]):
        assert np.array_equal(got[..., :1, :], want[..., :1, :])
