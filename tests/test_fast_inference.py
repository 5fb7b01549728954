"""The planned inference call behind the numba backend (kernels/_inference_plan.py),
reached through nn.LSTM: taken where it applies (one float32 sequence of a direction
without projection, whatever the layer's class or stack), bit for bit the general
path's results, and never used once anything it was planned on has changed (the
weights, their arrays, the input, the state)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional, kernels, nn  # noqa: E402
from kioku.kernels import _inference_plan  # noqa: E402
from kioku.train import SGD  # noqa: E402


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """Counts the planned (one compiled call) forwards."""
    seen: list[int] = []
    entry = _inference_plan.infer_sequence

    def counted(*args):
        seen.append(1)
        return entry(*args)

    monkeypatch.setattr(_inference_plan, "infer_sequence", counted)
    return seen


def make_layer(hidden: int, features: int, seed: int = 0, bias: bool = True) -> nn.LSTM:
    layer = nn.LSTM(features, hidden, bias=bias, rng=seed)
    layer.eval()
    return layer


def inputs(steps: int, batch: int, features: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, batch, features)).astype(np.float32)


def general(layer: nn.LSTM, x: np.ndarray, state=None):
    """The same call on the general path of the numba backend (no plan)."""
    with pytest.MonkeyPatch.context() as patch, kernels.use("numba"), nn.no_grad():
        patch.setattr(_inference_plan, "planned", lambda *args: None)
        return layer(x, state)


def plan_of(layer: nn.LSTM, suffix: str = "_l0"):
    """The inference plan kept for one direction's weights, or ``None``."""
    w_ih, w_hh = layer.params[f"weight_ih{suffix}"], layer.params[f"weight_hh{suffix}"]
    return _inference_plan._plans.get((id(w_ih), id(w_hh)))


def planned(layer: nn.LSTM, x: np.ndarray, state=None):
    with kernels.use("numba"), nn.no_grad():
        return layer(x, state)


def assert_same(got, want) -> None:
    y, (h, c) = got
    y_w, (h_w, c_w) = want
    for a, b in ((y, y_w), (h, h_w), (c, c_w)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b)


# H = 8: weights packed afresh every call; 33: a partial panel; 64: kept packed copies
@pytest.mark.parametrize("hidden", [8, 33, 64])
@pytest.mark.parametrize("bias", [True, False])
def test_planned_calls_match_the_general_path_bit_for_bit(calls, hidden, bias):
    layer = make_layer(hidden, 24, seed=hidden, bias=bias)
    rng = np.random.default_rng(hidden)
    state = tuple(rng.standard_normal((1, 1, hidden)).astype(np.float32) for _ in "hc")
    planned(layer, inputs(3, 1, 24))  # the first call plans, and runs the plan
    assert len(calls) == 1 and plan_of(layer) is not None
    for steps, with_state in ((1, False), (7, True), (4, False), (1, True)):
        x = inputs(steps, 1, 24, seed=steps)
        s = state if with_state else None
        got = planned(layer, x, s)
        assert_same(got, general(layer, x, s))
    assert len(calls) == 5
    weight_ih, weight_hh, bias_sum, _ = layer._weights(0, 0)
    want = functional.lstm_forward(x, weight_ih, weight_hh, bias_sum, state[0][0], state[1][0])
    assert_close("y", got[0], want[0], direction_depth(x, weight_hh))


@pytest.mark.parametrize("batch", [2, 5])
def test_batches_of_several_sequences_are_not_planned(calls, batch):
    layer = make_layer(16, 8)
    for _ in range(3):
        planned(layer, inputs(3, batch, 8))
    assert plan_of(layer) is None and not calls


def test_returned_arrays_are_fresh_every_call(calls):
    layer = make_layer(16, 8)
    x = inputs(2, 1, 8)
    planned(layer, x)
    first = planned(layer, x)
    second = planned(layer, x)
    assert len(calls) == 3
    for a, b in zip((first[0], *first[1]), (second[0], *second[1])):
        assert not np.shares_memory(a, b)
        assert np.array_equal(a, b)


def test_the_state_returned_feeds_the_next_step(calls):
    layer = make_layer(64, 32)
    x = inputs(6, 1, 32)
    want = general(layer, x)
    state, steps = None, []
    for t in range(6):
        y, state = planned(layer, x[t : t + 1], state)
        steps.append(y)
    assert len(calls) == 6
    assert np.array_equal(np.concatenate(steps), want[0])
    assert np.array_equal(state[0], want[1][0]) and np.array_equal(state[1], want[1][1])


def _sgd(layer):
    for _, _, grad in layer.named_parameters():
        grad[...] = 0.5
    SGD(layer.parameters(), lr=0.1).step()


def _load_state_dict(layer):
    layer.load_state_dict(make_layer(64, 32, seed=7).state_dict())


def _one_element_then_weights_changed(layer):
    layer.params["weight_hh_l0"][1, 1] += 0.5  # not a sampled element
    layer.weights_changed()


def _whole_array_in_place_unannounced(layer):
    weight = layer.params["weight_ih_l0"]
    weight[...] = np.random.default_rng(3).standard_normal(weight.shape) * 0.1


def _bias_in_place_unannounced(layer):
    layer.params["bias_hh_l0"][5] += 1.0  # biases are read on every call


def _array_replaced(layer):
    weight = layer.params["weight_hh_l0"]
    layer.params["weight_hh_l0"] = weight * np.float32(1.5)


WRITES = {
    "sgd": _sgd,
    "load_state_dict": _load_state_dict,
    "weights_changed": _one_element_then_weights_changed,
    "unannounced_full_write": _whole_array_in_place_unannounced,
    "unannounced_bias_write": _bias_in_place_unannounced,
    "array_replaced": _array_replaced,
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_weight_write_is_used_by_the_next_call(calls, write):
    layer = make_layer(64, 32)
    x = inputs(5, 1, 32)
    planned(layer, x)
    before = planned(layer, x)
    WRITES[write](layer)
    after = planned(layer, x)
    assert not np.array_equal(before[0], after[0]), "the write changed nothing"
    twin = make_layer(64, 32, seed=99)
    twin.load_state_dict(layer.state_dict())
    assert_same(after, general(twin, x))
    assert_same(planned(layer, x), after)  # planned again after the write
    assert calls


def test_small_weights_written_in_place_are_packed_afresh(calls):
    layer = make_layer(8, 8)  # 32 x 8: under _pack_cache.MIN_ELEMENTS
    x = inputs(3, 1, 8)
    planned(layer, x)
    before = planned(layer, x)
    layer.params["weight_hh_l0"][3, 2] += 1.0
    after = planned(layer, x)
    assert len(calls) == 3
    assert not np.array_equal(before[0], after[0])
    assert_same(after, general(layer, x))


def test_what_the_plan_does_not_cover_takes_the_general_path(calls, monkeypatch):
    layer = make_layer(16, 8)
    x = inputs(4, 1, 8)
    zeros = np.zeros((1, 1, 16), np.float32)
    covered = {  # the layer hands the backend a C-contiguous (T, 1, I) copy or view
        "plain": (x, None),
        "a negative stride": (x[::-1], None),
        "a C-contiguous view": (x[:, :, None, :].reshape(4, 1, 8), None),
        "state as a list": (x, [zeros, zeros]),
        "a strided input": (inputs(4, 1, 16)[:, :, ::2], None),
    }
    for name, (value, state) in covered.items():
        before = len(calls)
        assert_same(planned(layer, value, state), general(layer, value, state))
        assert len(calls) == before + 1, name
    not_covered = {
        "lengths": (x, None, np.array([3])),
        "another batch size": (inputs(4, 3, 8), None, None),
        "a missing state part": (x, (zeros, None), None),
    }
    for name, (value, state, lengths) in not_covered.items():
        before = len(calls)
        with kernels.use("numba"), nn.no_grad():
            layer(value, state, lengths)
        assert len(calls) == before, name
    before = len(calls)
    with kernels.use("reference"), nn.no_grad():
        layer(x)
    with nn.no_grad():
        monkeypatch.setenv("KIOKU_KERNELS", "reference")
        layer(x)
    assert len(calls) == before  # the reference backend has no plans
    monkeypatch.delenv("KIOKU_KERNELS")
    with nn.no_grad():
        layer(x)
    assert len(calls) == before + 1  # the plan kept for these weights runs again


def test_bad_input_after_a_plan_raises_as_before():
    layer = make_layer(16, 8)
    x = inputs(4, 1, 8)
    planned(layer, x)
    planned(layer, x)
    bad = {
        "x": (x.astype(np.float64), None, TypeError),
        "x ": (x[:, :, :5].copy(), None, ValueError),
        "state[h0]": (x, (np.zeros((1, 2, 16), np.float32),) * 2, ValueError),
        "state[c0]": (x, (np.zeros((1, 1, 16), np.float32), np.zeros((1, 1, 16))), TypeError),
    }
    for name, (value, state, error) in bad.items():
        with pytest.raises(error, match=name.strip().replace("[", r"\[")):
            planned(layer, value, state)


def test_grad_mode_hooks_and_backward_after_planned_calls(calls):
    layer = make_layer(16, 8)
    x = inputs(4, 1, 8)
    planned(layer, x)
    with kernels.use("numba"):
        layer(x)  # with grad: a cache for a backward, not an inference plan
        layer.backward(np.ones((4, 1, 16), np.float32))
        planned(layer, x)
    assert len(calls) == 2
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward(np.ones((4, 1, 16), np.float32))
    seen = []
    handle = layer.register_forward_hook(lambda *args: seen.append(args[3]))
    planned(layer, x)  # a forward hook reads the cache: the forward keeps one
    assert len(calls) == 2 and len(seen) == 1 and seen[0] is not None
    handle.remove()
    planned(layer, x)
    assert len(calls) == 3


def test_batch_first_turned_on_after_a_plan_is_honoured(calls):
    layer = make_layer(16, 8)
    x = inputs(1, 1, 8)  # (T, B) == (1, 1): the plan's batch fits either reading
    planned(layer, x)
    layer.batch_first = True
    got = planned(layer, inputs(1, 3, 8))  # now 1 sequence of 3 steps
    assert len(calls) == 2
    assert np.array_equal(got[0], general(layer, inputs(1, 3, 8))[0])
    assert got[0].shape == (1, 3, 16)


@pytest.mark.slow
def test_the_call_not_the_class_decides_what_is_planned(calls):
    """Plans live behind the backend, keyed on the arrays a direction's call passes: a
    variant whose variants are all off, each direction of a stack and a subclass are
    planned (bit for bit the general path); a variant's hooked step, a projection and
    float64 are not."""
    x = inputs(3, 1, 8)

    class Logged(nn.LSTM):
        def forward_direction(self, *args):
            return super().forward_direction(*args)

    covered = {
        "variant, all off": (nn.LSTMVariant(8, 16, rng=0), 1),
        "2 layers": (nn.LSTM(8, 16, num_layers=2, rng=0), 2),
        "bidirectional": (nn.LSTM(8, 16, bidirectional=True, rng=0), 2),
        "subclass": (Logged(8, 16, rng=0), 1),
    }
    for name, (layer, directions) in covered.items():
        layer.eval()
        before = len(calls)
        assert_same(planned(layer, x), general(layer, x))
        assert len(calls) == before + directions, name
    for layer in (
        nn.LSTMVariant(8, 16, peephole=True, rng=0),
        nn.LSTM(8, 16, proj_size=4, rng=0),
        nn.LSTM(8, 16, dtype=np.float64, rng=0),
    ):
        layer.eval()
        before = len(calls)
        planned(layer, x.astype(layer.dtype))
        assert len(calls) == before and plan_of(layer) is None


def test_threads_calling_one_layer_at_once_get_their_own_results(calls):
    layer = make_layer(64, 32)
    xs = [inputs(20, 1, 32, seed=s) for s in range(4)]  # one sequence each
    want = [general(layer, x)[0] for x in xs]
    planned(layer, xs[0])
    got: dict[int, list[bool]] = {k: [] for k in range(4)}

    def work(k: int) -> None:
        with nn.no_grad():
            for _ in range(50):
                got[k].append(np.array_equal(layer(xs[k])[0], want[k]))

    with kernels.use("numba"):
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(all(results) and len(results) == 50 for results in got.values())
    assert len(calls) == 201


@pytest.mark.parametrize("hidden", [8, 33, 64, 100, 130])
@pytest.mark.parametrize("reverse", [False, True])
def test_one_sequence_loop_matches_the_reference(monkeypatch, hidden, reverse):
    """Batch 1 runs _row_loop.row_infer_loop (panels read in alternating order): 4H
    spans 1 to 9 panels, with and without a partial one."""
    from kioku.kernels import numba_lstm

    rows = []
    entry = numba_lstm.infer_sequence
    monkeypatch.setattr(numba_lstm, "infer_sequence", lambda *a: rows.append(1) or entry(*a))

    rng = np.random.default_rng(hidden)
    features = 24

    def arr(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    args = dict(
        x=arr(9, 1, features), weight_ih=arr(4 * hidden, features),
        weight_hh=arr(4 * hidden, hidden), bias=arr(4 * hidden), h0=arr(1, hidden),
        c0=arr(1, hidden), reverse=reverse,
    )  # fmt: skip
    got = numba_lstm.lstm_forward(**args, keep_cache=False)
    want = functional.lstm_forward(**args)
    assert len(rows) == 1
    cached = numba_lstm.lstm_forward(**args)  # the training loop: another code path
    depth = direction_depth(args["x"], args["weight_hh"])
    for name, a, b, c in zip(("y", "h_n", "c_n"), got[:3], want[:3], cached[:3]):
        assert_close(f"{name} vs the reference", a, b, depth)
        assert_close(f"{name} vs the training loop", a, c, depth)


def test_one_sequence_unbatched_or_batch_first_is_planned(calls):
    layer = make_layer(33, 12)
    x = inputs(5, 1, 12)
    rng = np.random.default_rng(2)
    state = tuple(rng.standard_normal((1, 1, 33)).astype(np.float32) for _ in "hc")
    want = general(layer, x, state)
    unbatched_state = (state[0][:, 0], state[1][:, 0])  # (1, P) each
    planned(layer, x[:, 0])  # plans batch 1
    y, (h, c) = planned(layer, x[:, 0], unbatched_state)
    assert y.shape == (5, 33) and h.shape == c.shape == (1, 33)
    assert np.array_equal(y, want[0][:, 0])
    assert np.array_equal(h, want[1][0][:, 0]) and np.array_equal(c, want[1][1][:, 0])
    layer.batch_first = True
    y_bf, final = planned(layer, np.ascontiguousarray(x.transpose(1, 0, 2)), state)
    assert y_bf.shape == (1, 5, 33)
    assert np.array_equal(y_bf[0], want[0][:, 0])
    assert_same((want[0], final), want)
    assert len(calls) == 3
    planned(layer, inputs(2, 5, 12))  # batch_first, 2 sequences: the general path
    assert len(calls) == 3
    with pytest.raises(ValueError, match=r"state\[h0\]"):  # unbatched state of a batch
        planned(layer, x[:, 0], state)
