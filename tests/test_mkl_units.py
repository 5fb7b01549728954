"""Inference split over threads by hidden units, each step's recurrent product on oneMKL's
packed GEMM (kernels/_mkl_units.py, the path's ``mkl_units``): the same results as the
float64 reference within float32 rounding for every thread count, direction and state,
taken only where the rules say, its packed copies kept and refreshed as the pack cache's
are, and its threshold measured by the tuning. Where the ``mkl`` extra is not installed
the tests that run MKL skip saying so; CI installs it."""

from __future__ import annotations

import gc

import numpy as np
import pytest

pytest.importorskip("numba")

from mkl_paths import needs_mkl_packed, split_every_batch  # noqa: E402
from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional, kernels, nn  # noqa: E402
from kioku.kernels import (  # noqa: E402
    _mkl_units,
    _path,
    _threads,
    _tuning,
    _tuning_probes,
    _tuning_probes_mkl,
    numba_lstm,
    weights_changed,
)
from kioku.kernels._tuning_choices import NO_LIMIT  # noqa: E402

_F32 = np.dtype(np.float32)


@pytest.fixture
def threads(monkeypatch):
    """Split every batch over ``parts`` threads (rows from one on), the unit path on."""

    def use(parts: int) -> None:
        split_every_batch(monkeypatch, parts)
        monkeypatch.setattr(numba_lstm, "MKL_UNITS_MIN_BYTES", 0)
        monkeypatch.setattr(numba_lstm, "MKL_UNITS_WIDE_MIN_BYTES", 0)
        monkeypatch.setattr(numba_lstm, "MKL_UNITS_UNSPLIT_MIN_BYTES", 0)

    return use


def _path_of(T, B, I, H, **kw) -> _path.Path:
    args = dict(keep_cache=False, all_valid=True, weight_bytes=16 * H * (I + H),
                recurrent_bytes=16 * H * H)  # fmt: skip
    args.update(kw)
    return _path.choose_path(T, B, I, H, 0, _F32, **args)


@pytest.mark.parametrize("hidden,parts", [(1, 2), (16, 3), (40, 2), (97, 3), (130, 2)])
def test_unit_bounds_cover_every_unit_once(hidden, parts) -> None:
    offs = _mkl_units.unit_bounds(hidden, parts)
    assert offs.shape == (parts + 1,) and offs[0] == 0 and offs[-1] == hidden
    assert np.all(np.diff(offs) >= 0)
    assert all(int(o) % _mkl_units.ALIGN == 0 for o in offs[1:-1] if o < hidden)


@needs_mkl_packed
def test_the_rules_that_take_the_path(threads, monkeypatch) -> None:
    threads(2)
    assert _path_of(10, 8, 32, 64).mkl_units
    assert not _path_of(10, 8, 32, 64, keep_cache=True).mkl_units  # training keeps its loops
    assert not _path_of(10, 8, 32, 64, all_valid=False).mkl_units  # lengths: the row loops
    assert not _path.choose_path(
        10, 8, 32, 64, 16, _F32, keep_cache=False, all_valid=True, weight_bytes=1, recurrent_bytes=1
    ).mkl_units  # a projection (weight_hr)
    assert not _path.choose_path(
        10, 8, 32, 64, 0, np.dtype(np.float64), keep_cache=False, all_valid=True,
        weight_bytes=1, recurrent_bytes=1,
    ).mkl_units  # fmt: skip
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_MIN_BYTES", 16 * 64 * 64)
    assert _path_of(10, 8, 32, 64).mkl_units  # at the threshold
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_MIN_BYTES", 16 * 64 * 64 + 1)
    assert not _path_of(10, 8, 32, 64).mkl_units  # under it
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_MIN_BYTES", 0)
    monkeypatch.setattr(_mkl_units, "MIN_STEPS", 10)
    assert _path_of(10, 8, 32, 64).mkl_units and _path_of(10, 1, 32, 64).mkl_units
    assert not _path_of(9, 8, 32, 64).mkl_units  # too short: its costs per call
    assert not _path_of(9, 1, 32, 64).mkl_units
    threads(1)
    assert not _path_of(10, 8, 32, 64).mkl_units  # one thread: nothing to split
    assert not _path_of(10, 1, 32, 64).mkl_units


@needs_mkl_packed
def test_a_batch_too_small_to_split_by_rows_splits_by_units_on_the_budget(threads, monkeypatch):
    """One part by rows (B = 1, or fewer than MIN_ROWS rows a thread): the budget's threads
    split it by units, from MKL_UNITS_UNSPLIT_MIN_BYTES on, in place of kioku's own unit
    split, the fused loop and the one-sequence call."""
    threads(3)
    monkeypatch.setattr(_threads, "MIN_ROWS", 8)
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", NO_LIMIT)  # kioku's own would fuse
    monkeypatch.setattr(_threads, "UNITS_INFER_MIN_FLOPS", 0.0)
    for B in (1, 4):
        path = _path_of(10, B, 32, 64)
        assert path.parts == 1 and path.mkl_units and path.mkl_parts == 3
        assert path.unit_parts == 1 and not path.fused and not path.one_sequence
        assert not path.budget_free  # the parts came from the budget
    assert _path_of(10, 1, 32, 20).mkl_parts == 2  # a share of ALIGN units at least each
    assert _path_of(10, 1, 32, 128).mkl_units
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_UNSPLIT_MIN_BYTES", 16 * 128 * 128 + 1)
    path = _path_of(10, 1, 32, 128)
    assert not path.mkl_units and path.mkl_parts == 1 and path.unit_parts > 1  # its own
    assert _path_of(10, 1, 32, 64, keep_cache=True).mkl_parts == 1  # training: never


@needs_mkl_packed
def test_more_rows_a_thread_follow_the_wide_threshold(threads, monkeypatch) -> None:
    """Up to NARROW_ROWS rows a thread (the split by rows) read MKL_UNITS_MIN_BYTES, more
    read MKL_UNITS_WIDE_MIN_BYTES: each threshold decides its own calls only."""
    threads(2)
    narrow, wide = 2 * _mkl_units.NARROW_ROWS, 2 * _mkl_units.NARROW_ROWS + 2
    assert _path_of(10, narrow, 32, 64).parts == _path_of(10, wide, 32, 64).parts == 2
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_WIDE_MIN_BYTES", NO_LIMIT)
    assert _path_of(10, narrow, 32, 64).mkl_units
    assert not _path_of(10, wide, 32, 64).mkl_units
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_WIDE_MIN_BYTES", 16 * 64 * 64)
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_MIN_BYTES", NO_LIMIT)
    assert not _path_of(10, narrow, 32, 64).mkl_units
    assert _path_of(10, wide, 32, 64).mkl_units  # at the threshold
    monkeypatch.setattr(numba_lstm, "MKL_UNITS_WIDE_MIN_BYTES", 16 * 64 * 64 + 1)
    assert not _path_of(10, wide, 32, 64).mkl_units  # under it
    assert _tuning.CHOICES["MKL_UNITS_WIDE_MIN_BYTES"].default == NO_LIMIT  # by hand: never


def test_never_without_mkl(threads, monkeypatch) -> None:
    threads(2)
    monkeypatch.setattr(_mkl_units, "AVAILABLE", False)
    assert not _path_of(10, 8, 32, 64).mkl_units
    assert _tuning.CHOICES["MKL_UNITS_MIN_BYTES"].default == NO_LIMIT  # by hand: never


def _case(rng, T, B, I, H):
    s = 1 / np.sqrt(H)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.uniform(-s, s, (4 * H, I)).astype(np.float32)
    w_hh = rng.uniform(-s, s, (4 * H, H)).astype(np.float32)
    b = rng.uniform(-s, s, 4 * H).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32)
    return x, w_ih, w_hh, b, h0, c0


def _reference(x, w_ih, w_hh, b, h0, c0, reverse):
    args = [a.astype(np.float64) if a is not None else None for a in (x, w_ih, w_hh, b, h0, c0)]
    return functional.lstm_forward(*args, None, reverse, None, False)[:3]


@needs_mkl_packed
@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize(
    "T,B,I,H,reverse,state",
    [(7, 4, 24, 40, False, True), (5, 6, 17, 33, True, False), (3, 20, 64, 130, True, True),
     (2, 5, 3, 16, False, True), (9, 2, 8, 1, False, False)],
)  # fmt: skip
def test_matches_the_reference(threads, parts, T, B, I, H, reverse, state) -> None:
    """Outputs and final states within float32 rounding of float64, every thread count
    (three threads at H = 16: one share empty), both directions, with and without state."""
    threads(parts)
    rng = np.random.default_rng(T * 100 + H)
    x, w_ih, w_hh, b, h0, c0 = _case(rng, T, B, I, H)
    if not state:
        h0 = c0 = None
    assert _path_of(T, B, I, H).mkl_units and _path_of(T, B, I, H).parts == min(parts, B)
    got = numba_lstm.lstm_forward(x, w_ih, w_hh, b, h0, c0, reverse=reverse, keep_cache=False,
                                  reuse_packs=True)  # fmt: skip
    want = _reference(x, w_ih, w_hh, b, h0, c0, reverse)
    depth = direction_depth(x, w_hh)
    for name, g, w in zip(("y", "h_n", "c_n"), got[:3], want):
        assert_close(name, g, w, depth)


@needs_mkl_packed
def test_kept_packs_follow_the_weights(threads) -> None:
    """The packed copy is reused while the weights stand, and packed afresh after a write
    through kioku (the epoch), an unannounced in-place write (the sample), another batch
    size: each call's result is the one a fresh pack gives, bit for bit."""
    threads(2)
    rng = np.random.default_rng(5)
    x, w_ih, w_hh, b, _, _ = _case(rng, 6, 8, 32, 48)

    def infer(x=x, reuse=True):
        return numba_lstm.lstm_forward(x, w_ih, w_hh, b, keep_cache=False, reuse_packs=reuse)[0]

    first = infer()
    packs = _mkl_units._entries[id(w_hh)][8]
    np.testing.assert_array_equal(infer(), first)
    assert _mkl_units._entries[id(w_hh)][8] is packs  # kept
    w_hh *= 0.5  # user code, unannounced: the sample sees it
    np.testing.assert_array_equal(infer(), infer(reuse=False))
    assert _mkl_units._entries[id(w_hh)][8] is not packs
    packs = _mkl_units._entries[id(w_hh)][8]
    w_hh[1:-1] += 0.25  # rows the sample may miss, announced
    weights_changed()
    np.testing.assert_array_equal(infer(), infer(reuse=False))
    assert _mkl_units._entries[id(w_hh)][8] is not packs
    wider = np.concatenate([x, x[:, :3]], axis=1)  # another batch size: packed for it
    np.testing.assert_array_equal(infer(wider), infer(wider, reuse=False))
    assert _mkl_units._entries[id(w_hh)][6] == 11
    other = w_hh.copy()  # an entry leaves with its array
    numba_lstm.lstm_forward(x, w_ih, other, b, keep_cache=False, reuse_packs=True)
    key = id(other)
    assert _mkl_units._entries[key][0]() is other
    del other
    gc.collect()
    assert key not in _mkl_units._entries


@needs_mkl_packed
def test_an_eval_layer_infers_as_it_trains(threads) -> None:
    """A layer in eval mode under ``no_grad`` (the path) and the same layer's training
    forward (the row loops): within float32 rounding of each other."""
    threads(2)
    layer = nn.LSTM(24, 40, rng=np.random.default_rng(3))
    x = np.random.default_rng(4).standard_normal((9, 6, 24)).astype(np.float32)
    trained, _ = layer(x)
    layer.eval()
    with kernels.use("numba"), nn.no_grad():
        inferred, _ = layer(x)
    w_hh = layer.params["weight_hh_l0"]
    assert id(w_hh) in _mkl_units._entries  # it took the path
    assert_close("y", inferred, trained, 2 * direction_depth(x, w_hh))


@needs_mkl_packed
@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize(
    "T,B,I,H,reverse,state",
    [(7, 1, 24, 40, False, True), (5, 1, 17, 33, True, False), (4, 3, 9, 70, True, True)],
)  # fmt: skip
def test_an_unsplit_batch_matches_the_reference(threads, monkeypatch, parts, T, B, I, H,
                                                reverse, state) -> None:  # fmt: skip
    """Batches too small to split by rows, split by units over the budget: the same as
    float64, both directions, with and without state, through the layer's batch-1 route
    (reuse_packs: the one-sequence plan, not made for this path)."""
    threads(parts)
    monkeypatch.setattr(_threads, "MIN_ROWS", 4)
    rng = np.random.default_rng(T * 10 + B)
    x, w_ih, w_hh, b, h0, c0 = _case(rng, T, B, I, H)
    if not state:
        h0 = c0 = None
    path = _path_of(T, B, I, H)
    assert path.parts == 1 and path.mkl_units and path.mkl_parts == min(parts, -(-H // 16))
    for _ in range(2):  # the second call: kept packs, and no plan of the first
        got = numba_lstm.lstm_forward(x, w_ih, w_hh, b, h0, c0, reverse=reverse,
                                      keep_cache=False, reuse_packs=True)  # fmt: skip
        assert id(w_hh) in _mkl_units._entries
        want = _reference(x, w_ih, w_hh, b, h0, c0, reverse)
        depth = direction_depth(x, w_hh)
        for name, g, w in zip(("y", "h_n", "c_n"), got[:3], want):
            assert_close(name, g, w, depth)


@needs_mkl_packed
@pytest.mark.parametrize(
    "name,probe,rows",
    [("MKL_UNITS_MIN_BYTES", "mkl_units", 8), ("MKL_UNITS_WIDE_MIN_BYTES", "mkl_units_wide", 32),
     ("MKL_UNITS_UNSPLIT_MIN_BYTES", "mkl_units_unsplit", None)],
)  # fmt: skip
def test_the_probe_times_both_splits(name, probe, rows, monkeypatch) -> None:
    """Each probe times both paths at its own rows per thread (batch 1: unsplit), on its
    own setting, and leaves the setting in force as it found it."""
    clock = _tuning_probes.Clock(block_s=0.0, rounds=1)
    choice = _tuning.CHOICES[name]
    assert choice.probe == probe
    batches = []
    real = _tuning_probes_mkl._eval_levels  # the name the probes call
    monkeypatch.setattr(
        _tuning_probes_mkl, "_eval_levels",
        lambda c, k, steps, batch, setting, q: batches.append((batch, setting[0]))
        or real(c, k, steps, batch, setting, q),
    )  # fmt: skip
    levels, note = getattr(_tuning_probes, probe)(choice, clock, 0.1)
    if _threads.max_threads() < 2:
        assert levels == [] and note
        return
    batch = 1 if rows is None else rows * _tuning_probes._probe_threads()
    assert batches == [(batch, name)]
    assert note is None and len(levels) == len(choice.candidates)
    assert [level["quantity"] for level in levels] == [16 * h * h for h in choice.candidates]
    assert all(level["on_s"] > 0 and level["off_s"] > 0 for level in levels)
    assert getattr(numba_lstm, name) == _tuning.current(name)


def test_the_probe_says_why_without_mkl(monkeypatch) -> None:
    monkeypatch.setattr(_mkl_units, "AVAILABLE", False)
    levels, note = _tuning_probes.mkl_units(_tuning.CHOICES["MKL_UNITS_MIN_BYTES"], None, 1.0)
    assert levels == [] and "not installed" in note
