"""Memory of one float32 backward call on the packed path: the arrays it must return or
fill, plus scratch bounded in terms of the shape (no whole packed copy of W_ih, no fresh
weight-gradient arrays when the layer passes its own, no 4H x KC transpose buffer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

from kioku.kernels import numba_lstm
from kioku.kernels._loop_gemms import GC, pass_rows
from kioku.kernels._packed import MR, NR

# the second layer of the 2 x 256 bidirectional benchmark stack: T, B, I, H
SHAPE = (35, 20, 512, 256)
MIB = 1 << 20


def _case(T, B, I, H, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = (rng.standard_normal((4 * H, I)) * 0.05).astype(np.float32)
    w_hh = (rng.standard_normal((4 * H, H)) * 0.05).astype(np.float32)
    bias = (rng.standard_normal(4 * H) * 0.1).astype(np.float32)
    y, _, _, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, bias)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    return cache, dy


def _needed_bytes(T, B, I, H):
    """What the call must hold whatever its scratch: dgates (T, B, 4H), dx (T, B, I) and
    W_hh packed for the per-step product (4H x H)."""
    return 4 * (T * B * 4 * H + T * B * I + 4 * H * H)


def _scratch_bound(T, B, I, H):
    """The compiled scratch at its largest: one panel of W_ih (4H x NR) while dx is
    computed, then the transposed gate gradients (GC x KC) and one pass of inputs and
    hidden states packed (KC x (I + H)); the tile throughout."""
    kc = pass_rows(T, B, False)  # KC rows, or all: a pipelined pass is never more
    return 4 * (max(4 * H * NR, min(GC, 4 * H) * kc + kc * (I + H)) + MR * NR)


# the per-call (B, H) state arrays (dh, dc and their scratch) and array headers
SLACK = 128 * 1024


@pytest.mark.slow
def test_grads_into_adds_in_place_and_matches_fresh_gradients():
    cache, dy = _case(6, 5, 64, 64)  # multiples of NR: the packed path
    fresh = numba_lstm.lstm_backward(dy, cache)
    start_ih = np.random.default_rng(1).standard_normal(fresh.dweight_ih.shape).astype(np.float32)
    start_hh = np.random.default_rng(2).standard_normal(fresh.dweight_hh.shape).astype(np.float32)
    into = (start_ih.copy(), start_hh.copy())
    got = numba_lstm.lstm_backward(dy, cache, grads_into=into)
    assert got.dweight_ih is into[0] and got.dweight_hh is into[1]
    depth = recurrent_depth(6, 64, 64, batch=5) + 1  # the sums, then the start added
    assert_close("dweight_ih", into[0], start_ih + fresh.dweight_ih, depth)
    assert_close("dweight_hh", into[1], start_hh + fresh.dweight_hh, depth)
    assert np.array_equal(got.dx, fresh.dx) and np.array_equal(got.dbias, fresh.dbias)
    zeros = (np.zeros_like(start_ih), np.zeros_like(start_hh))
    numba_lstm.lstm_backward(dy, cache, grads_into=zeros)  # from zero: the same sums
    assert np.array_equal(zeros[0], fresh.dweight_ih)
    assert np.array_equal(zeros[1], fresh.dweight_hh)


def test_grads_into_that_does_not_fit_is_added_after():
    cache, dy = _case(4, 3, 24, 16)
    fresh = numba_lstm.lstm_backward(dy, cache)
    into = (np.ones((64, 24), np.float64), np.ones((64, 16), np.float64))  # other dtype
    got = numba_lstm.lstm_backward(dy, cache, grads_into=into)
    assert got.dweight_ih is into[0]
    depth = recurrent_depth(4, 24, 16, batch=3) + 1  # float32 sums, added in float64
    assert_close("dweight_ih", into[0], 1 + fresh.dweight_ih.astype(np.float64), depth)
    assert_close("dweight_hh", into[1], 1 + fresh.dweight_hh.astype(np.float64), depth)


def test_backward_traced_peak_is_its_outputs_and_bounded_scratch(monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "1")
    T, B, I, H = SHAPE
    cache, dy = _case(*SHAPE)
    into = (np.zeros((4 * H, I), np.float32), np.zeros((4 * H, H), np.float32))
    numba_lstm.lstm_backward(dy, cache, grads_into=into)  # compiled and warm
    tracemalloc.start()
    numba_lstm.lstm_backward(dy, cache, grads_into=into)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # NumPy and Numba's runtime both report their buffers to tracemalloc: the compiled
    # scratch is seen too (the code before this bound held 5.1 MiB more here: W_ih packed
    # whole, the weight gradients fresh, a 4H x KC transpose buffer)
    needed, scratch = _needed_bytes(*SHAPE), _scratch_bound(*SHAPE)
    assert needed + scratch <= peak <= needed + scratch + SLACK, (peak / MIB, needed / MIB)


_PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from test_kernels_backward_memory import SHAPE, _case
    from kioku.kernels import numba_lstm

    T, B, I, H = SHAPE
    cache, dy = _case(*SHAPE)
    into = (np.zeros((4 * H, I), np.float32), np.zeros((4 * H, H), np.float32))
    for _ in range(2):
        numba_lstm.lstm_backward(dy, cache, grads_into=into)

    def kib(field):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])

    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = kib("VmRSS")
    numba_lstm.lstm_backward(dy, cache, grads_into=into)
    print(json.dumps((kib("VmHWM") - before) * 1024))
    """
)


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS counter"
)
def test_backward_peak_resident_memory_is_bounded():
    # in a fresh process, every buffer over 64 KiB its own mapping (as kioku.bench.memory
    # measures): the resident high-water mark of one call covers the compiled scratch too
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", KIOKU_NUM_THREADS="1")
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, here], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak = json.loads(done.stdout.strip().splitlines()[-1])
    needed, scratch = _needed_bytes(*SHAPE), _scratch_bound(*SHAPE)
    # plus page rounding and the stacks
    assert needed <= peak <= needed + scratch + 2 * SLACK, (peak / MIB, needed / MIB)


@pytest.mark.parametrize("lengths", [None, np.array([6, 2, 5, 1, 3])])
def test_dgates_buffer_is_scratch_whatever_it_held(lengths):
    rng = np.random.default_rng(3)
    T, B, I, H = 6, 5, 64, 64
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih, w_hh = (rng.standard_normal((4 * H, n)).astype(np.float32) * 0.1 for n in (I, H))
    y, _, _, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, lengths=lengths)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    fresh = numba_lstm.lstm_backward(dy, cache)
    buffer = np.full(cache.gates.shape, np.nan, np.float32)  # stale contents: NaN
    got = numba_lstm.lstm_backward(dy, cache, dgates_buffer=buffer)
    assert not np.isnan(buffer).any()  # used, and every element written
    for a, b in zip(got, fresh):
        assert (a is None and b is None) or np.array_equal(a, b)
    wrong = np.full((T, B, 4 * H + 1), np.nan, np.float32)  # does not fit: not used
    got = numba_lstm.lstm_backward(dy, cache, dgates_buffer=wrong)
    assert np.isnan(wrong).all() and np.array_equal(got.dx, fresh.dx)


def test_layer_keeps_one_dgates_buffer_per_direction_and_drops_it_under_no_grad():
    from kioku.bench.memory import retained_bytes
    from kioku.nn import LSTM, no_grad

    lstm = LSTM(64, 64, num_layers=2, bidirectional=True, rng=0)
    x = np.random.default_rng(4).standard_normal((7, 3, 64)).astype(np.float32)
    grads, kept = [], []
    for _ in range(2):  # the second step reuses the first step's (dirty) buffers
        lstm.zero_grad()
        y, _ = lstm(x)
        lstm.backward(np.ones_like(y))
        grads.append({k: v.copy() for k, v in lstm.grads.items()})
        buffers = lstm._scratch  # the layer's scratch: one gate-gradient buffer a direction
        assert sorted(buffers) == [0, 1] and buffers[0].shape == (7, 3, 256)
        kept.append(dict(buffers))
    assert all(kept[0][d] is kept[1][d] for d in (0, 1))
    assert all(np.array_equal(grads[0][k], grads[1][k]) for k in grads[0])
    with no_grad():
        lstm(x)
    assert not lstm._scratch and retained_bytes(lstm) == 0


def test_planned_inference_drops_the_dgates_buffer_too():
    """A planned no_grad call (kernels._inference_plan) drops the training scratch as any
    no_grad forward does, or train -> plan -> train -> planned call keeps it."""
    from kioku import kernels
    from kioku.bench.memory import retained_bytes
    from kioku.kernels import _inference_plan
    from kioku.nn import LSTM, no_grad

    if kernels.backend_name() != "numba":
        pytest.skip("the inference plan is the numba backend's")
    lstm = LSTM(16, 16, rng=0)
    x = np.random.default_rng(5).standard_normal((5, 1, 16)).astype(np.float32)
    for _ in range(2):
        y, _ = lstm(x)
        lstm.backward(np.ones_like(y))
        assert lstm._scratch
        with no_grad():
            lstm(x)  # planned on first use (kernels._inference_plan)
        assert not lstm._scratch and retained_bytes(lstm) == 0
    weights = (lstm.params["weight_ih_l0"], lstm.params["weight_hh_l0"])
    assert (id(weights[0]), id(weights[1])) in _inference_plan._plans  # the calls planned
