"""Inference that does not pay for training: ``keep_cache=False`` in every functional
forward (outputs bit-identical to the forward that keeps its cache, cache ``None``, less
memory at its peak) and ``kioku.nn.no_grad()`` (the layers keep no cache, a backward is
refused, the mode nests and is per thread)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from cases import peak_bytes
from tolerance import assert_close, direction_depth, recurrent_depth

import kioku
from kioku import functional
from kioku.bench.memory import retained_bytes
from kioku.functional.lstm_variants import VariantHooks

SEEDS = range(6)


def _arrays(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    T, B, I, H = int(rng.integers(1, 7)), int(rng.integers(1, 4)), 3, 4
    lengths = rng.integers(1, T + 1, B) if seed % 2 else None

    def arr(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(dtype)

    return rng, T, B, I, H, lengths, arr, bool(seed % 3 == 1)


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, tuple):
            _same(g, w)
        else:
            assert np.array_equal(g, w)


@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_forward_without_cache_equals_forward_with_it(seed):
    rng, T, B, I, H, lengths, arr, reverse = _arrays(seed)
    P = 2 if seed % 2 == 0 else None
    args = (arr(T, B, I), arr(4 * H, I), arr(4 * H, P or H), arr(4 * H), arr(B, P or H))
    args += (arr(B, H), lengths, reverse, arr(P, H) if P else None)
    *want, cache = functional.lstm_forward(*args)
    *got, none = functional.lstm_forward(*args, keep_cache=False)
    assert cache is not None and none is None
    _same(got, want)


def test_lstm_variant_forward_without_cache_equals_forward_with_it():
    rng, T, B, I, H, lengths, arr, reverse = _arrays(3)
    args = (arr(T, B, I), arr(4 * H, I), arr(4 * H, H), arr(4 * H), None, None, lengths, reverse)
    hooks = VariantHooks(weight_peephole=arr(3 * H), clip=0.5)
    *want, _ = functional.lstm_forward(*args, hooks=hooks)
    *got, none = functional.lstm_forward(*args, keep_cache=False, hooks=hooks)
    assert none is None
    _same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_forward_without_cache_equals_forward_with_it(seed, nonlinearity):
    rng, T, B, I, H, lengths, arr, reverse = _arrays(seed)
    args = (arr(T, B, I), arr(H, I), arr(H, H), arr(H), arr(B, H), lengths, reverse, nonlinearity)
    *want, cache = functional.rnn_forward(*args)
    *got, none = functional.rnn_forward(*args, keep_cache=False)
    assert cache is not None and none is None
    _same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_forward_without_cache_equals_forward_with_it(seed, reset_after):
    rng, T, B, I, H, lengths, arr, reverse = _arrays(seed)
    args = (arr(T, B, I), arr(3 * H, I), arr(3 * H, H), arr(3 * H), arr(3 * H), arr(B, H))
    args += (lengths, reverse, reset_after)
    *want, cache = functional.gru_forward(*args)
    *got, none = functional.gru_forward(*args, keep_cache=False)
    assert cache is not None and none is None
    _same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_numba_gru_forward_without_cache_equals_forward_with_it(seed, dtype, reset_after):
    numba_gru = pytest.importorskip("kioku.kernels.numba_gru")
    rng, T, B, I, H, lengths, arr, reverse = _arrays(seed, dtype)
    args = (arr(T, B, I), arr(3 * H, I), arr(3 * H, H), arr(3 * H), arr(3 * H), arr(B, H))
    args += (lengths, reverse, reset_after)
    *want, cache = numba_gru.gru_forward(*args)
    *got, none = numba_gru.gru_forward(*args, keep_cache=False)
    assert cache is not None and none is None
    _same(got, want)
    ref = functional.gru_forward(*args)[:2]
    depth = direction_depth(args[0], args[2])
    for name, g, w in zip(("y", "h_n"), got, ref):
        assert_close(name, g, w, depth, dtype)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_slstm_forward_without_cache_equals_forward_with_it(seed, forget_gate):
    rng, T, B, I, H, lengths, arr, reverse = _arrays(seed)
    K = 2
    state = (arr(B, H), arr(B, H), np.abs(arr(B, H)) + 1, arr(B, H)) if seed % 3 else None
    args = (arr(T, B, I), arr(4 * H, I), arr(K, H // K, 4, H // K), arr(4 * H), state)
    args += (lengths, reverse, forget_gate)
    *want, cache = functional.slstm_forward(*args)
    *got, none = functional.slstm_forward(*args, keep_cache=False)
    assert cache is not None and none is None
    _same(got, want)


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru", "slstm"])
def test_forward_without_cache_peaks_lower(cell):
    rng = np.random.default_rng(0)
    T, B, I, H = 200, 4, 8, 32
    x = rng.standard_normal((T, B, I))
    rows = {"lstm": 4, "rnn": 1, "gru": 3, "slstm": 4}[cell]
    w_ih = rng.standard_normal((rows * H, I)) * 0.1
    if cell == "slstm":
        w_hh = rng.standard_normal((1, H, 4, H)) * 0.1
    else:
        w_hh = rng.standard_normal((rows * H, H)) * 0.1
    forward = getattr(functional, f"{cell}_forward")
    with_cache = peak_bytes(lambda: forward(x, w_ih, w_hh))
    without = peak_bytes(lambda: forward(x, w_ih, w_hh, keep_cache=False))
    # what both keep: the input projection (T, B, rows H) and y (T, B, H)
    shared = (rows + 1) * T * B * H * 8
    assert without < shared + 64 * 1024 < with_cache


LAYERS = {
    "lstm": lambda **kw: kioku.nn.LSTM(3, 4, proj_size=2, **kw),
    "variant": lambda **kw: kioku.nn.LSTMVariant(3, 4, peephole=True, **kw),
    "rnn": lambda **kw: kioku.nn.RNN(3, 4, **kw),
    "gru": lambda **kw: kioku.nn.GRU(3, 4, **kw),
    "slstm": lambda **kw: kioku.nn.SLSTM(3, 4, num_heads=2, **kw),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_layer_under_no_grad_equals_forward_keeps_nothing_and_refuses_backward(kind, backend):
    layer = LAYERS[kind](num_layers=2, bidirectional=True, rng=1)
    x = np.random.default_rng(2).standard_normal((5, 3, 3)).astype(np.float32)
    lengths = np.array([5, 2, 4])
    with kioku.kernels.use(backend):
        y, state = layer(x, lengths=lengths)
        assert layer.caches and retained_bytes(layer) > 0
        with kioku.nn.no_grad():
            y_ng, state_ng = layer(x, lengths=lengths)
        got = (y_ng, *(state_ng if isinstance(state_ng, tuple) else (state_ng,)))
        want = (y, *(state if isinstance(state, tuple) else (state,)))
        if backend == "reference":
            _same(got, want)
        else:  # numba's LSTM inference loop rounds apart from its training loop
            depth = recurrent_depth(5, 8, 4, layers=2, batch=3)
            for g, w in zip(got, want, strict=True):
                assert_close("no_grad vs forward", g, w, depth)
        assert layer.caches == [] and retained_bytes(layer) == 0
        with pytest.raises(RuntimeError, match=r"no_grad\(\)"):
            layer.backward(np.ones_like(y))
        layer(x, lengths=lengths)  # a forward outside no_grad() can be undone again
        dx = layer.backward(np.ones_like(y))[0]
        assert dx.shape == x.shape


def test_eval_mode_alone_keeps_the_cache():
    lstm = kioku.nn.LSTM(3, 4, rng=0).eval()
    y, _ = lstm(np.ones((2, 1, 3), np.float32))
    assert lstm.caches and lstm.backward(np.ones_like(y))[0].shape == (2, 1, 3)


def test_forward_hooks_still_see_the_cache_under_no_grad():
    lstm = kioku.nn.LSTM(3, 4, rng=0)
    seen = []
    with lstm.register_forward_hook(lambda m, layer, d, cache: seen.append(cache.gates.shape)):
        with kioku.nn.no_grad():
            y, _ = lstm(np.ones((2, 1, 3), np.float32))
    assert seen == [(2, 1, 16)] and lstm.caches == []
    with pytest.raises(RuntimeError, match=r"no_grad\(\)"):
        lstm.backward(np.ones_like(y))


@pytest.mark.parametrize("make", [lambda: kioku.nn.LSTMCell(3, 4, rng=0),
                                  lambda: kioku.nn.GRUCell(3, 4, rng=0)])  # fmt: skip
def test_cells_under_no_grad_keep_nothing(make):
    cell = make()
    x = np.ones((2, 3), np.float32)
    out = cell(x)
    with kioku.nn.no_grad():
        out_ng = cell(x)
    _same(
        out_ng if isinstance(out_ng, tuple) else (out_ng,),
        out if isinstance(out, tuple) else (out,),
    )
    assert len(cell._stack) == 1  # only the forward outside no_grad()
    cell._stack.clear()
    with kioku.nn.no_grad():
        h = cell(x)
    with pytest.raises(RuntimeError, match=r"no_grad\(\)"):
        cell.backward(h[0] if isinstance(h, tuple) else h)


def test_no_grad_nests_restores_on_error_and_decorates():
    enabled = kioku.nn.is_grad_enabled
    outer = kioku.nn.no_grad()
    assert enabled()
    with outer:
        with outer:  # the same instance, nested
            assert not enabled()
        assert not enabled()
        with kioku.nn.no_grad():
            assert not enabled()
        assert not enabled()
    assert enabled()
    with pytest.raises(KeyError):
        with kioku.nn.no_grad():
            raise KeyError("inside")
    assert enabled()

    @kioku.nn.no_grad()
    def infer():
        return enabled()

    assert infer() is False and enabled()


def test_no_grad_is_per_thread():
    seen = []
    with kioku.nn.no_grad():
        worker = threading.Thread(target=lambda: seen.append(kioku.nn.is_grad_enabled()))
        worker.start()
        worker.join()
        seen.append(kioku.nn.is_grad_enabled())
    assert seen == [True, False]
