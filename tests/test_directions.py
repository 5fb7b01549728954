"""The two directions of a bidirectional layer side by side (``plan(...)
.parallel_directions``), forward and backward: the same outputs, state and gradients as
one direction after the other, each direction on its own thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import kioku
from kioku.kernels import _threads
from kioku.nn import recurrent

LAYERS = {
    "lstm": lambda: kioku.nn.LSTM(6, 48, num_layers=2, bidirectional=True, rng=3),
    "lstm_proj": lambda: kioku.nn.LSTM(6, 48, proj_size=40, bidirectional=True, rng=3),
    "rnn": lambda: kioku.nn.RNN(6, 96, num_layers=2, bidirectional=True, rng=3),
    "gru": lambda: kioku.nn.GRU(6, 64, num_layers=2, bidirectional=True, rng=3),
    "slstm": lambda: kioku.nn.SLSTM(6, 64, num_layers=2, bidirectional=True, rng=3),
}


def _run(layer, x, lengths, dy):
    layer.zero_grad()
    y, state = layer(x, lengths=lengths)
    dx, dstate = layer.backward(dy)
    state = state if isinstance(state, tuple) else (state,)
    dstate = dstate if isinstance(dstate, tuple) else (dstate,)
    return [y, *state, dx, *dstate, *(layer.grads[k].copy() for k in sorted(layer.grads))]


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_directions_side_by_side_equal_one_after_the_other(kind, backend, monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    layer = LAYERS[kind]()
    rng = np.random.default_rng(0)
    T, B = 7, 16
    x = rng.standard_normal((T, B, 6)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B)
    y_shape = layer(x)[0].shape
    dy = rng.standard_normal(y_shape).astype(np.float32)
    assert _threads.plan(B, layer.step_flops(B), 2).parallel_directions

    calls, threads = [], set()
    real_run, real_forward = recurrent.run_directions, layer.forward_direction

    def spy_run(tasks, parallel, spin=False):
        calls.append(parallel)
        return real_run(tasks, parallel, spin)

    def spy_forward(*args):
        threads.add(threading.get_ident())
        return real_forward(*args)

    monkeypatch.setattr(recurrent, "run_directions", spy_run)
    monkeypatch.setattr(layer, "forward_direction", spy_forward)
    with kioku.kernels.use(backend):
        side_by_side = _run(layer, x, lengths, dy)
        assert calls and all(calls)  # every layer, forward and backward
        assert len(threads) == 2  # the reverse direction ran on another thread
        monkeypatch.setattr(_threads, "DIRECTIONS_MIN_FLOPS", float("inf"))
        calls.clear()
        in_turn = _run(layer, x, lengths, dy)
        assert calls and not any(calls)
    for got, want in zip(side_by_side, in_turn, strict=True):
        np.testing.assert_array_equal(got, want)


def test_backward_hooks_keep_directions_in_turn(monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    layer = LAYERS["lstm"]()
    x = np.random.default_rng(1).standard_normal((4, 16, 6)).astype(np.float32)
    y, _ = layer(x)
    seen = []
    with layer.register_backward_hook(lambda m, layer, d, grads: seen.append((layer, d))):
        layer.backward(np.ones_like(y))
    assert seen == [(1, 0), (1, 1), (0, 0), (0, 1)]


def test_small_layers_stay_on_one_thread(monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    layer = kioku.nn.LSTM(3, 4, bidirectional=True, rng=0)
    assert not layer._directions_in_parallel(1)


def test_variant_drawing_masks_keeps_directions_in_turn(monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    x = np.random.default_rng(4).standard_normal((5, 16, 6)).astype(np.float32)

    def run(**variants):
        layer = kioku.nn.LSTMVariant(6, 48, bidirectional=True, rng=9, **variants)
        return layer, layer(x)[0]

    layer, y = run(zoneout=(0.2, 0.1))
    assert not layer._directions_in_parallel(16)  # masks drawn in a fixed order
    np.testing.assert_array_equal(run(zoneout=(0.2, 0.1))[1], y)
    assert not run(recurrent_dropout=0.3)[0]._directions_in_parallel(16)
    layer.eval()
    assert layer._directions_in_parallel(16)  # eval mode draws nothing


@pytest.mark.parametrize("mode", ["concat", "sum", "mean", "mul"])
def test_merge_backward_inputs_are_all_the_merge_backward_reads(mode):
    """The stand-ins a layer keeps for its backward give the same gradients as the outputs."""
    from kioku.functional.merge import (
        merge_backward_inputs,
        merge_directions,
        merge_directions_backward,
    )

    rng = np.random.default_rng(3)
    forward, backward = rng.standard_normal((2, 5, 3, 4))
    dmerged = rng.standard_normal(merge_directions(forward, backward, mode).shape)
    kept = merge_backward_inputs(forward, backward, mode)
    want = merge_directions_backward(dmerged, forward, backward, mode)
    got = merge_directions_backward(dmerged, *kept, mode)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert (kept[0].size == 0) == (mode != "mul")
