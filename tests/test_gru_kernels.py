"""The compiled GRU (kernels/numba_gru.py) against the reference functional GRU: every
output, cache field and gradient within the rounding of its dtype over the depth of the
computation (tests/tolerance.py), on random configurations, the batch-1 path, the
register-tiled path and the threaded batch split."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import tolerance  # noqa: E402

import kioku  # noqa: E402
from kioku import functional, kernels  # noqa: E402
from kioku.kernels import _threads, numba_gru  # noqa: E402


def make_case(seed: int, dtype=None, batch=None, steps=None, hidden=None):
    """A random configuration: direction, lengths, initial state, biases, reset_after."""
    rng = np.random.default_rng(seed)
    dtype = dtype or (np.float32, np.float64)[seed % 2]
    T = steps or int(rng.choice([1, 2, 5, 7]))
    B = batch or int(rng.choice([1, 2, 3, 9]))
    I, H = int(rng.integers(1, 6)), hidden or int(rng.integers(1, 9))

    def arr(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    args = dict(
        x=arr(T, B, I, scale=1.0),
        weight_ih=arr(3 * H, I),
        weight_hh=arr(3 * H, H),
        bias_ih=arr(3 * H) if rng.random() < 0.8 else None,
        bias_hh=arr(3 * H) if rng.random() < 0.8 else None,
        h0=arr(B, H) if rng.random() < 0.5 else None,
        lengths=rng.integers(1, T + 1, B) if rng.random() < 0.5 else None,
        reverse=bool(rng.random() < 0.5),
        reset_after=bool(rng.random() < 0.6),
    )
    grads = dict(
        dy=arr(T, B, H, scale=1.0),
        dh_n=arr(B, H, scale=1.0) if rng.random() < 0.5 else None,
        need_dx=bool(rng.random() < 0.7),
    )
    return args, grads, dtype


def assert_close(actual, expected, depth, what):
    """Same dtype, and equal within the rounding of ``depth`` roundings in it."""
    assert actual.dtype == expected.dtype, what
    tolerance.assert_close(what, actual, expected, depth, expected.dtype)


def check_parity(args, grads, dtype) -> float:
    y, h_n, cache = numba_gru.gru_forward(**args)
    y_r, h_r, cache_r = functional.gru_forward(**args)
    assert isinstance(cache, functional.GRUCache)
    worst = 0.0
    pairs = [("y", y, y_r), ("h_n", h_n, h_r)]
    pairs += [(f, getattr(cache, f), getattr(cache_r, f)) for f in ("gates", "h_state")]
    if args["lengths"] is None:  # at masked steps recurrent_n holds unused values
        pairs.append(("recurrent_n", cache.recurrent_n, cache_r.recurrent_n))
    got = numba_gru.gru_backward(grads["dy"], cache, grads["dh_n"], grads["need_dx"])
    want = functional.gru_backward(grads["dy"], cache_r, grads["dh_n"], grads["need_dx"])
    for name, a, e in zip(want._fields, got, want):
        assert (a is None) == (e is None), name
        if a is not None:
            pairs.append((name, a, e))
    depth = tolerance.direction_depth(args["x"], args["weight_hh"])
    for name, a, e in pairs:
        assert a.shape == e.shape, name
        assert_close(a, e, depth, name)
        worst = max(worst, float(np.abs(a - e).max()) if a.size else 0.0)
    return worst


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations_match_reference(seed):
    check_parity(*make_case(seed))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch,steps", [(1, 1), (1, 6), (2, 3), (7, 1)])
def test_edge_shapes(reset_after, dtype, batch, steps):
    args, grads, _ = make_case(batch * 10 + steps, dtype, batch, steps)
    args["reset_after"] = reset_after
    check_parity(args, grads, dtype)


@pytest.mark.parametrize("reset_after", [True, False])
def test_batch_split_across_threads_matches_reference(monkeypatch, reset_after):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    for seed in range(4):
        args, grads, dtype = make_case(seed, batch=9)
        args["reset_after"] = reset_after
        check_parity(args, grads, dtype)


@pytest.mark.parametrize("reset_after", [True, False])
def test_tiled_recurrent_gemm_matches_reference(monkeypatch, reset_after):
    monkeypatch.setattr(numba_gru, "L2_BYTES", 0)  # as if the weights missed the cache
    for seed in range(4):
        args, grads, dtype = make_case(seed, batch=11, hidden=13)
        args["reset_after"] = reset_after
        check_parity(args, grads, dtype)


def test_traces_and_mixed_dtypes_fall_back_to_reference():
    args, grads, _ = make_case(0, np.float32, batch=3, steps=4)
    _, _, cache = numba_gru.gru_forward(**args)
    trace = np.empty_like(grads["dy"])
    numba_gru.gru_backward(grads["dy"], cache, dh_trace=trace)
    want = np.empty_like(trace)
    functional.gru_backward(grads["dy"], cache, dh_trace=want)
    np.testing.assert_array_equal(trace, want)
    mixed = dict(args, weight_ih=args["weight_ih"].astype(np.float64))
    y, _, _ = numba_gru.gru_forward(**mixed)
    y_r, _, _ = functional.gru_forward(**mixed)
    np.testing.assert_array_equal(y, y_r)


def test_bad_shapes_raise_before_the_compiled_loop():
    args, grads, _ = make_case(1, np.float32, batch=3, steps=4)
    H = args["weight_hh"].shape[1]
    with pytest.raises(ValueError, match=r"bias_hh: expected shape"):
        numba_gru.gru_forward(**dict(args, bias_hh=np.zeros(3 * H + 1, np.float32)))
    with pytest.raises(ValueError, match=r"h0: expected shape"):
        numba_gru.gru_forward(**dict(args, h0=np.zeros((2, H), np.float32)))
    _, _, cache = numba_gru.gru_forward(**args)
    with pytest.raises(ValueError, match=r"dy: expected shape"):
        numba_gru.gru_backward(grads["dy"][:, :2], cache)


def test_layer_picks_the_compiled_gru_and_matches_the_reference():
    with kernels.use("numba"):
        assert kernels.backend_for("gru").gru_forward is numba_gru.gru_forward
        assert kernels.backend_for("gru").gru_backward is numba_gru.gru_backward
    with kernels.use("reference"):
        assert kernels.backend_for("gru").gru_forward is functional.gru_forward
        assert kernels.backend_for("gru").gru_backward is functional.gru_backward
    gru = kioku.nn.GRU(4, 6, 2, bidirectional=True, reset_after=False, rng=0)
    x = np.random.default_rng(0).normal(size=(7, 3, 4)).astype(np.float32)
    dy = np.random.default_rng(1).normal(size=(7, 3, 12)).astype(np.float32)
    results = {}
    for name in ("reference", "numba"):
        with kernels.use(name):
            gru.zero_grad()
            y, h_n = gru(x, lengths=[7, 2, 5])
            dx, _ = gru.backward(dy)
            results[name] = [y, h_n, dx] + [gru.grads[k].copy() for k in sorted(gru.grads)]
    depth = tolerance.recurrent_depth(7, 12, 6, layers=2, batch=3, gates=3)
    for a, e in zip(results["numba"], results["reference"]):
        tolerance.assert_close("numba vs reference", a, e, depth)
