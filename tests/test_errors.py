"""Bad input raises ValueError/TypeError naming the argument with expected and found
values, and leaves the layer untouched; NaN/inf behaviour as documented."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import kioku
from kioku.functional import sigmoid


@pytest.fixture
def lstm():
    return kioku.nn.LSTM(3, 4, 2, bidirectional=True, rng=0)


def x_of(*shape, dtype=np.float32):
    return np.random.default_rng(0).normal(size=shape).astype(dtype)


@pytest.mark.parametrize(
    "make_x,error,words",
    [
        (lambda: x_of(2, 3, 4, 3), ValueError, ["x", "rank 3", "(2, 3, 4, 3)"]),
        (lambda: x_of(3), ValueError, ["x", "rank 3", "(3,)"]),
        (lambda: x_of(5, 2, 7), ValueError, ["x", "3 features", "(5, 2, 7)"]),
        (lambda: np.ones((5, 2, 3), np.int64), TypeError, ["x", "floating", "int64"]),
        (lambda: x_of(5, 2, 3, dtype=np.float64), TypeError, ["x", "float32", "float64"]),
        (lambda: x_of(0, 2, 3), ValueError, ["x", "at least one step", "(0, 2, 3)"]),
    ],
)
def test_bad_x(lstm, make_x, error, words):
    with pytest.raises(error) as info:
        lstm(make_x())
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "state,error,words",
    [
        ((x_of(4, 2, 4), x_of(4, 2, 5)), ValueError, ["state[c0]", "(4, 2, 4)", "(4, 2, 5)"]),
        ((x_of(2, 2, 4), x_of(4, 2, 4)), ValueError, ["state[h0]", "(4, 2, 4)", "(2, 2, 4)"]),
        ((x_of(4, 2, 4, dtype=np.float64), x_of(4, 2, 4)), TypeError, ["state[h0]", "float64"]),
        (x_of(4, 2, 4), ValueError, ["state", "tuple (h0, c0)"]),
    ],
)
def test_bad_state(lstm, state, error, words):
    with pytest.raises(error) as info:
        lstm(x_of(5, 2, 3), state)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "lengths,error,words",
    [
        (np.array([2.5, 3.0]), TypeError, ["lengths", "integers", "float64"]),
        (np.array([0, 3]), ValueError, ["lengths", "1..5", "found 0"]),
        (np.array([6, 3]), ValueError, ["lengths", "1..5", "found 6"]),
        (np.array([3, 3, 3]), ValueError, ["lengths", "(2,)", "(3,)"]),
        (np.array([True, True]), TypeError, ["lengths", "integers", "bool"]),
    ],
)
def test_bad_lengths(lstm, lengths, error, words):
    with pytest.raises(error) as info:
        lstm(x_of(5, 2, 3), lengths=lengths)
    for word in words:
        assert word in str(info.value)


def test_whole_float_lengths_are_accepted(lstm):
    a, _ = lstm(x_of(5, 2, 3), lengths=np.array([5.0, 2.0]))
    b, _ = lstm(x_of(5, 2, 3), lengths=np.array([5, 2]))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        ({"merge_mode": "avg"}, ValueError, ["merge_mode", "concat", "'avg'"]),
        ({"proj_size": 4}, ValueError, ["proj_size", "less than hidden_size", "4"]),
        ({"dropout": 1.0}, ValueError, ["dropout", "[0, 1)", "1.0"]),
        ({"num_layers": 0}, ValueError, ["num_layers", ">= 1", "0"]),
        ({"dtype": np.int32}, TypeError, ["dtype", "float32", "int32"]),
        ({"hidden_size": 2.5}, TypeError, ["hidden_size", "integer", "2.5"]),
    ],
)
def test_bad_constructor_arguments(kwargs, error, words):
    args = {"input_size": 3, "hidden_size": 4} | kwargs
    with pytest.raises(error) as info:
        kioku.nn.LSTM(**args)
    for word in words:
        assert word in str(info.value)


def test_bad_dy_and_backward_before_forward(lstm):
    with pytest.raises(RuntimeError, match="forward first"):
        lstm.backward(x_of(5, 2, 8))
    lstm(x_of(5, 2, 3))
    with pytest.raises(ValueError, match=r"dy: expected shape \(5, 2, 8\), found \(5, 2, 4\)"):
        lstm.backward(x_of(5, 2, 4))


def test_refused_input_leaves_the_layer_unchanged(lstm):
    before = lstm.state_dict()
    y, _ = lstm(x_of(5, 2, 3))
    with pytest.raises(ValueError):
        lstm(x_of(5, 2, 3), lengths=np.array([9, 9]))
    # the last successful forward is still the one a backward undoes
    dx, _ = lstm.backward(np.ones_like(y))
    assert dx.shape == (5, 2, 3)
    for name, value in lstm.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_names_the_key(lstm):
    state = lstm.state_dict()
    bad = dict(state)
    bad["weight_ih_l0"] = np.zeros((16, 4), np.float32)
    with pytest.raises(
        ValueError, match=r"state\['weight_ih_l0'\]: expected shape \(16, 3\), found \(16, 4\)"
    ):
        lstm.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != "bias_hh_l1_reverse"}
    with pytest.raises(KeyError, match="missing keys.*bias_hh_l1_reverse"):
        lstm.load_state_dict(missing)
    with pytest.raises(KeyError, match="unexpected keys.*weight_hr_l0"):
        lstm.load_state_dict(state | {"weight_hr_l0": np.zeros((2, 4), np.float32)})
    for name, value in lstm.state_dict().items():  # nothing was written
        np.testing.assert_array_equal(value, state[name])


def test_sigmoid_and_forward_are_quiet_for_huge_inputs():
    x = np.array([-1e4, -100, 0, 100, 1e4, np.inf, -np.inf], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(x.copy())
        lstm = kioku.nn.LSTM(1, 3, rng=0)
        y, _ = lstm(np.full((4, 1, 1), 1e4, np.float32))
    np.testing.assert_array_equal(s[[0, 5, 6, 2]], [0, 1, 0, 0.5])
    assert np.isfinite(y).all()


def test_nan_stays_in_its_sequence():
    """Documented: inputs are not checked; a NaN at (t, b) makes sequence b's outputs
    NaN from step t on (from step t back to 0 in the reverse direction) and leaves
    the other sequences untouched."""
    lstm = kioku.nn.LSTM(3, 4, 2, bidirectional=True, rng=0)
    x = x_of(6, 3, 3)
    clean, _ = lstm(x)
    x[3, 1, 0] = np.nan
    y, (h, c) = lstm(x)
    np.testing.assert_array_equal(y[:, [0, 2]], clean[:, [0, 2]])
    assert np.isnan(y[:, 1]).all()  # layer 2 reads both directions of layer 1 at every step
    assert np.isnan(h[:, 1]).all() and not np.isnan(h[:, [0, 2]]).any()
    first = kioku.nn.LSTM(3, 4, 1, rng=0)
    y1, _ = first(x)
    assert not np.isnan(y1[:3, 1]).any() and np.isnan(y1[3:, 1]).all()
