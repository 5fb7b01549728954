"""Training with each thread's recurrent products on oneMKL's packed GEMM, split by batch
rows (kernels/_mkl_rows.py, the path's ``mkl_rows``): the same outputs, states and
gradients as the float64 reference within float32 rounding for every thread count,
direction, state and layout of ``dy``, taken only where the rules say, and its threshold
measured by the tuning. Where the ``mkl`` extra is not installed the tests that run MKL
skip saying so; CI installs it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from mkl_paths import needs_mkl_packed, split_every_batch  # noqa: E402
from tolerance import assert_close, direction_depth, recurrent_depth  # noqa: E402

from kioku import functional, kernels, nn  # noqa: E402
from kioku.kernels import (  # noqa: E402
    _mkl_rows,
    _mkl_units,
    _path,
    _threads,
    _training_plan,
    _tuning,
    _tuning_probes,
    _tuning_probes_mkl,
    numba_lstm,
)
from kioku.kernels._tuning_choices import NO_LIMIT  # noqa: E402

_F32 = np.dtype(np.float32)


@pytest.fixture
def threads(monkeypatch):
    """Split every batch over ``parts`` threads by rows, the path on from any size."""

    def use(parts: int) -> None:
        split_every_batch(monkeypatch, parts)
        monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", NO_LIMIT)
        monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", NO_LIMIT)
        monkeypatch.setattr(numba_lstm, "MKL_ROWS_MIN_BYTES", 0)
        _training_plan.forget_all()

    yield use
    _training_plan.forget_all()


@pytest.fixture
def calls(monkeypatch):
    """Counts of the path's two loops' calls, forward and backward."""
    counted = {"forward": 0, "backward": 0}
    backward_module = sys.modules[numba_lstm.lstm_backward.__module__]  # (import cycle)
    forward, backward = numba_lstm.lstm_forward_mkl_rows, backward_module.lstm_backward_mkl_rows

    def count_forward(*args):
        counted["forward"] += 1
        return forward(*args)

    def count_backward(*args):
        counted["backward"] += 1
        return backward(*args)

    monkeypatch.setattr(numba_lstm, "lstm_forward_mkl_rows", count_forward)
    monkeypatch.setattr(backward_module, "lstm_backward_mkl_rows", count_backward)
    return counted


def _path_of(T, B, I, H, **kw) -> _path.Path:
    args = dict(keep_cache=True, all_valid=True, weight_bytes=16 * H * (I + H),
                recurrent_bytes=16 * H * H)  # fmt: skip
    args.update(kw)
    return _path.choose_path(T, B, I, H, 0, _F32, **args)


@needs_mkl_packed
def test_the_rules_that_take_the_path(threads, monkeypatch) -> None:
    threads(2)
    assert _path_of(10, 8, 32, 64).mkl_rows
    assert _path_of(10, 1, 32, 64).mkl_rows  # one part: its rows all the same
    assert not _path_of(10, 8, 32, 64, keep_cache=False).mkl_rows  # inference: its own paths
    assert not _path_of(10, 8, 32, 64, all_valid=False).mkl_rows  # lengths: the row loops
    assert not _path.choose_path(
        10, 8, 32, 64, 16, _F32, keep_cache=True, all_valid=True, weight_bytes=1, recurrent_bytes=1
    ).mkl_rows  # a projection (weight_hr)
    assert not _path.choose_path(
        10, 8, 32, 64, 0, np.dtype(np.float64), keep_cache=True, all_valid=True,
        weight_bytes=1, recurrent_bytes=1,
    ).mkl_rows  # fmt: skip
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", NO_LIMIT)
    assert not _path_of(10, 8, 32, 64).mkl_rows  # each step projects its own inputs
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", 0)
    monkeypatch.setattr(numba_lstm, "MKL_ROWS_MIN_BYTES", 16 * 64 * 64)
    assert _path_of(10, 8, 32, 64).mkl_rows  # at the threshold
    monkeypatch.setattr(numba_lstm, "MKL_ROWS_MIN_BYTES", 16 * 64 * 64 + 1)
    assert not _path_of(10, 8, 32, 64).mkl_rows  # under it
    monkeypatch.setattr(numba_lstm, "MKL_ROWS_MIN_BYTES", 0)
    monkeypatch.setattr(_mkl_units, "MIN_STEPS", 10)
    assert not _path_of(9, 8, 32, 64).mkl_rows  # too short: a pack per call for few steps
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 64)
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", NO_LIMIT)
    path = _path_of(10, 8, 32, 128)  # two panels of units at least
    assert path.unit_parts > 1 and not path.mkl_rows  # kioku's split by units instead
    assert _tuning.CHOICES["MKL_ROWS_MIN_BYTES"].default == NO_LIMIT  # by hand: never


def test_never_without_mkl(threads, monkeypatch) -> None:
    threads(2)
    monkeypatch.setattr(_mkl_units, "AVAILABLE", False)
    assert not _path_of(10, 8, 32, 64).mkl_rows
    levels, note = _tuning_probes.mkl_rows(_tuning.CHOICES["MKL_ROWS_MIN_BYTES"], None, 1.0)
    assert levels == [] and "mkl" in note


def _case(rng, T, B, I, H):
    s = 1 / np.sqrt(H)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.uniform(-s, s, (4 * H, I)).astype(np.float32)
    w_hh = rng.uniform(-s, s, (4 * H, H)).astype(np.float32)
    b = rng.uniform(-s, s, 4 * H).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32)
    return x, w_ih, w_hh, b, h0, c0


@needs_mkl_packed
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize(
    "T,B,I,H,reverse,state,strided",
    [(7, 4, 24, 40, False, True, False), (5, 7, 17, 33, True, False, True),
     (3, 20, 64, 130, True, True, False), (6, 5, 3, 16, False, False, True),
     (4, 2, 8, 1, False, True, False)],
)  # fmt: skip
def test_matches_the_reference(threads, calls, parts, T, B, I, H, reverse, state, strided):
    """Outputs, final states and every gradient within float32 rounding of float64, one to
    three threads (uneven row counts: a pack for each), both directions, with and without
    initial state, ``dy`` contiguous or one direction's strided view."""
    threads(parts)
    rng = np.random.default_rng(T * 100 + H)
    x, w_ih, w_hh, b, h0, c0 = _case(rng, T, B, I, H)
    if not state:
        h0 = c0 = None
    assert _path_of(T, B, I, H).mkl_rows and _path_of(T, B, I, H).parts == min(parts, B)
    both = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    dy = both[:, :, H:] if strided else np.ascontiguousarray(both[:, :, :H])
    y, h_n, c_n, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, b, h0, c0, reverse=reverse)
    grads = numba_lstm.lstm_backward(dy, cache)
    assert calls == {"forward": min(parts, B), "backward": min(parts, B)}

    f64 = [a.astype(np.float64) if a is not None else None for a in (x, w_ih, w_hh, b, h0, c0)]
    out = functional.lstm_forward(*f64, None, reverse, None, True)
    want = functional.lstm_backward(dy.astype(np.float64), out[3])
    depth = direction_depth(x, w_hh)
    for name, g, w in zip(("y", "h_n", "c_n"), (y, h_n, c_n), out[:3]):
        assert_close(name, g, w, depth)
    for name in ("dx", "dweight_ih", "dweight_hh", "dbias", "dh0", "dc0"):
        assert_close(name, getattr(grads, name), getattr(want, name), depth)


@needs_mkl_packed
def test_a_layer_trains_on_the_path(threads, calls) -> None:
    """A bidirectional two-layer layer's training step (its backward reads each direction's
    ``dy`` as a strided view) on the path: the gradients of the reference backend's."""
    threads(2)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 6, 12)).astype(np.float32)
    layer = nn.LSTM(12, 24, num_layers=2, bidirectional=True, rng=np.random.default_rng(6))
    grads = {}
    for backend in ("reference", "numba"):
        layer.zero_grad()
        with kernels.use(backend):
            y, _ = layer(x)
            layer.backward(np.ones_like(y))
        grads[backend] = {name: g.copy() for name, g in layer.grads.items()}
    assert calls["forward"] == calls["backward"] == 2 * 2 * 2  # layers, directions, parts
    depth = recurrent_depth(8, 2 * 24, 24, layers=2, batch=6)  # the widest input: 2 H
    for name, want in grads["reference"].items():
        assert_close(name, grads["numba"][name], want, depth)


@needs_mkl_packed
def test_a_plan_keeps_only_the_calls_shorter_than_the_path(threads, calls, monkeypatch) -> None:
    """A batch small enough for a training plan: calls of MIN_STEPS steps or more take the
    path (not the plan's own loops), shorter ones the plan."""
    threads(1)
    monkeypatch.setattr(_mkl_units, "MIN_STEPS", 10)
    rng = np.random.default_rng(7)
    x, w_ih, w_hh, b, _, _ = _case(rng, 12, 1, 16, 16)
    plan = _training_plan.plan_training(w_ih, w_hh, 1)
    assert plan is not None and plan.path is not None and plan.solo_steps == 9
    numba_lstm.lstm_forward(x, w_ih, w_hh, b)
    assert calls["forward"] == 1
    numba_lstm.lstm_forward(x[:9], w_ih, w_hh, b)
    assert calls["forward"] == 1  # the plan's


@needs_mkl_packed
def test_packs_are_made_once_per_row_count() -> None:
    w = np.random.default_rng(0).uniform(-1, 1, (64, 16)).astype(np.float32)
    packs = _mkl_rows.packs(w, (slice(0, 3), slice(3, 6), slice(6, 8)), True)
    assert packs[0] is packs[1] and packs[2] is not packs[0]
    assert all(p.dtype == np.float32 and p.ctypes.data % 64 == 0 for p in packs)


@needs_mkl_packed
def test_the_probe_times_both_paths(monkeypatch) -> None:
    """The probe times a training call on and off the path at 10 rows per thread, at least
    MIN_STEPS steps (so that the path is taken), and leaves the setting as it found it."""
    clock = _tuning_probes.Clock(block_s=0.0, rounds=1)
    choice = _tuning.CHOICES["MKL_ROWS_MIN_BYTES"]
    assert choice.probe == "mkl_rows"
    shapes = []
    real = _tuning_probes_mkl._planned_training
    monkeypatch.setattr(
        _tuning_probes_mkl, "_planned_training",
        lambda T, B, H: shapes.append((T, B, H)) or real(T, B, H),
    )  # fmt: skip
    levels, note = _tuning_probes.mkl_rows(choice, clock, 0.1)
    rows = 10 * _tuning_probes._probe_threads()
    assert shapes == [(_mkl_units.MIN_STEPS, rows, h) for h in choice.candidates for _ in (0, 1)]
    assert note is None and len(levels) == len(choice.candidates)
    assert [level["quantity"] for level in levels] == [16 * h * h for h in choice.candidates]
    assert all(level["on_s"] > 0 and level["off_s"] > 0 for level in levels)
    assert numba_lstm.MKL_ROWS_MIN_BYTES == _tuning.current("MKL_ROWS_MIN_BYTES")
