"""The worked solutions of notebooks 00 and 01 (notebooks/solutions/), each answer checked
another way than the solution computes it: kioku's hand-derived backward and PyTorch's
autograd against the by-hand gradients of 00, the task's own definition against the
trained LSTM's slope, and the equations written out in NumPy against 01's predictions.
Float64 wherever the check allows it, so that agreement is to rounding, not to a
tolerance chosen after the fact."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from notebook_solutions import load

import kioku
import kioku.inspect

nb00 = load("00_vanishing_gradient")
nb01 = load("01_interface_and_gates")

# float64 rounding through a few dozen steps of small matrices: far below this
F64 = 1e-12


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _leak(params: dict, x: np.ndarray, rows: slice) -> float:
    """How far a gate whose bias was moved by 30 can still be from shut (0) or wide open
    (1): ``sigmoid(P - 30)``, with ``P`` a bound on the gate's pre-activation before the
    move (``|x W| + |b_ih + b_hh| + |W_hh|`` summed over a state in [-1, 1])."""
    bound = (
        np.abs(x @ params["weight_ih_l0"][rows].T).max()
        + np.abs(params["bias_ih_l0"][rows] + params["bias_hh_l0"][rows]).max()
        + np.abs(params["weight_hh_l0"][rows]).sum(axis=1).max()
    )
    return float(_sigmoid(bound - nb01.SHUT))


# --- notebook 00 -------------------------------------------------------------------------


def test_00_exercise_1_defaults_match_kiokus_backward():
    """The notebook's own setting (float32): the hand recursion gives kioku's dL/dh_t."""
    rnn, x = nb00.exercise_1_setup()
    (record,) = kioku.inspect.gradient_flow(rnn, x)
    by_hand = nb00.exercise_1()
    assert by_hand.shape == record.dh.shape == (nb00.RNN_STEPS, 4, nb00.RNN_SIZE)
    # float32: each of the 30 steps rounds to ~6e-8 of the values it carries
    np.testing.assert_allclose(by_hand, record.dh, rtol=30 * 6e-8, atol=1e-30)


def _small_rnn() -> tuple[kioku.nn.RNN, np.ndarray]:
    rnn = kioku.nn.RNN(3, 5, dtype=np.float64, rng=7)
    return rnn, np.random.default_rng(8).normal(size=(12, 2, 3))


def test_00_exercise_1_one_step_back_by_hand_equals_kiokus_backward():
    rnn, x = _small_rnn()
    by_hand = nb00.exercise_1(rnn, x)  # (T, B, H)
    (record,) = kioku.inspect.gradient_flow(rnn, x)
    np.testing.assert_allclose(by_hand, record.dh, rtol=F64, atol=F64)


@pytest.mark.torch
def test_00_exercise_1_one_step_back_by_hand_equals_torch_autograd():
    torch = pytest.importorskip("torch")
    rnn, x = _small_rnn()
    by_hand = nb00.exercise_1(rnn, x)
    cell = torch.nn.RNNCell(3, 5, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.from_numpy(rnn.params[f"{name}_l0"]))
    h = torch.zeros(2, 5, dtype=torch.float64)
    states = []
    for t in range(x.shape[0]):
        h = cell(torch.from_numpy(x[t]), h)
        h.retain_grad()
        states.append(h)
    states[-1].sum().backward()
    autograd = np.stack([s.grad.numpy() for s in states])
    np.testing.assert_allclose(by_hand, autograd, rtol=F64, atol=F64)


def test_00_exercise_1_refuses_what_the_formula_does_not_cover():
    x = np.zeros((4, 1, 2), np.float32)
    with pytest.raises(ValueError, match="rnn: expected a one-layer"):
        nb00.exercise_1(kioku.nn.RNN(2, 3, num_layers=2, rng=0), x)


def _cell_path_lstm_f64(forget_bias: float) -> kioku.nn.LSTM:
    lstm = kioku.nn.LSTM(2, 6, dtype=np.float64, rng=11)
    weights = lstm.state_dict()
    weights["weight_hh_l0"][:] = 0.0
    weights["bias_ih_l0"][6:12] = forget_bias
    weights["bias_hh_l0"][6:12] = 0.0
    lstm.load_state_dict(weights)
    return lstm


def test_00_exercise_2_product_of_forget_gates_equals_kiokus_cell_gradient():
    lstm = _cell_path_lstm_f64(1.0)
    x = np.random.default_rng(12).normal(size=(25, 3, 2))
    answer = nb00.exercise_2(lstm, x, forget_biases=(0.0, 2.0, 4.0))
    (record,) = kioku.inspect.gradient_flow(lstm, x)
    np.testing.assert_allclose(answer.dc, record.dc, rtol=F64, atol=F64)

    # the share reaching step 0, from kioku's backward of each variant
    for bias, share in answer.surviving.items():
        (variant,) = kioku.inspect.gradient_flow(_cell_path_lstm_f64(bias), x)
        norms = np.linalg.norm(variant.dc, axis=2)
        assert share == pytest.approx(np.mean(norms[0] / norms[-1]), rel=1e-10)
    shares = [answer.surviving[b] for b in (0.0, 2.0, 4.0)]
    assert shares[0] < shares[1] < shares[2]


def test_00_exercise_2_defaults_and_the_recurrent_weights_refused():
    answer = nb00.exercise_2()
    (record,) = kioku.inspect.gradient_flow(nb00.cell_path_lstm(), nb00.exercise_2_inputs())
    # float32, 50 steps of one product each
    np.testing.assert_allclose(answer.dc, record.dc, rtol=50 * 6e-8, atol=1e-30)
    # sigmoid(b)**49 bounds what passes 49 steps when every forget gate is near sigmoid(b):
    # the inputs move the gates a little, the shares stay within a factor of the bound
    for bias, share in answer.surviving.items():
        bound = _sigmoid(bias) ** (nb00.CELL_PATH_STEPS - 1)
        assert 0.1 * bound < share < 10 * bound, (bias, share, bound)
    with pytest.raises(ValueError, match="weight_hh_l0 all zeros"):
        nb00.cell_gradients_by_hand(kioku.nn.LSTM(2, 3, rng=0), np.zeros((3, 1, 2), np.float32))


def _backprop_slope(model, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    model(x)
    dx = model.backward(np.ones(x.shape[1], np.float32), need_dx=True)
    model.zero_grad()
    return dx[step, np.arange(x.shape[1]), 0]


# float32 answers (~3e-8 each) over 2 eps = 0.02, plus eps**2 / 6 |f'''| of the central
# difference for |f'''| <= 1
SLOPE_ATOL = 2 * 3e-8 / 0.02 + 1e-4 / 6


def test_00_exercise_3_slope_equals_backprop_on_an_untrained_lstm():
    rng = np.random.default_rng(13)
    model = nb00.LastStepRegressor("lstm", 2, 8, rng)
    x = nb00.adding_batch(rng, 16, 12)[0]
    first, second = nb00.marked_steps(x)
    assert np.all(x[first, np.arange(16), 1] == 1) and np.all(first < second)
    for which, step in (("first", first), ("second", second)):
        slope = nb00.exercise_3(model, x, which=which)
        np.testing.assert_allclose(slope, _backprop_slope(model, x, step), rtol=0, atol=SLOPE_ATOL)


@pytest.mark.slow
def test_00_exercise_3_the_trained_lstm_answers_with_the_tasks_slope():
    """The target is 0.5 + (x1 + x2) / 4: a solved task has slope 1/4 for both values."""
    model = nb00.train_regressor("lstm")
    x = nb00.adding_batch(np.random.default_rng(14), 300, 40)[0]
    first, _ = nb00.marked_steps(x)
    slope = nb00.exercise_3(model, x, which="first")
    np.testing.assert_allclose(slope, _backprop_slope(model, x, first), rtol=0, atol=SLOPE_ATOL)
    # the answer counts as right within 0.04; a slope off by 10% moves it by at most 0.0025
    assert np.mean(slope) == pytest.approx(0.25, rel=0.1)
    assert np.mean(nb00.exercise_3(model, x, which="second")) == pytest.approx(0.25, rel=0.1)


# --- notebook 01 -------------------------------------------------------------------------


def test_01_exercise_1_two_pieces_carrying_the_state_equal_one_call():
    lstm = kioku.nn.LSTM(3, 5, num_layers=2, dtype=np.float64, rng=21)
    x = np.random.default_rng(22).normal(size=(9, 2, 3))
    y_whole, (h_whole, c_whole) = lstm(x)
    for split in (1, 4, 8):
        y, (h_n, c_n) = nb01.exercise_1(lstm, x, split)
        np.testing.assert_allclose(y, y_whole, rtol=F64, atol=F64)
        np.testing.assert_allclose(h_n, h_whole, rtol=F64, atol=F64)
        np.testing.assert_allclose(c_n, c_whole, rtol=F64, atol=F64)
    # without the state the second piece starts from zeros: not the same
    y_rest, _ = lstm(x[4:])
    assert np.abs(y_rest - y_whole[4:]).max() > 1e-3
    # the notebook's own LSTM
    lstm0, _, x0 = nb01.notebook_setup()
    np.testing.assert_allclose(nb01.exercise_1()[0], lstm0(x0)[0], rtol=1e-6, atol=1e-7)


def _lstm_by_hand(params: dict, x: np.ndarray) -> np.ndarray:
    """The six equations in NumPy, rows in gate order i, f, g, o: ``c (T, B, H)``."""
    H = params["weight_hh_l0"].shape[1]
    h = np.zeros((x.shape[1], H))
    c = np.zeros((x.shape[1], H))
    cells = []
    for x_t in x:
        pre = (
            x_t @ params["weight_ih_l0"].T
            + h @ params["weight_hh_l0"].T
            + params["bias_ih_l0"]
            + params["bias_hh_l0"]
        )
        i, f, o = (_sigmoid(pre[:, k * H : (k + 1) * H]) for k in (0, 1, 3))
        g = np.tanh(pre[:, 2 * H : 3 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        cells.append(c)
    return np.stack(cells)


def test_01_exercise_2_shut_forget_gate_leaves_only_what_the_step_wrote():
    lstm = kioku.nn.LSTM(3, 4, dtype=np.float64, rng=31)
    x = np.random.default_rng(32).normal(size=(7, 2, 3))
    answer = nb01.exercise_2(lstm, x)
    before, after = lstm.state_dict(), answer.lstm.state_dict()
    for name in before:  # only the forget gate's bias moved, by -30
        change = after[name] - before[name]
        expected = np.zeros_like(change)
        if name == "bias_ih_l0":
            expected[4:8] = -nb01.SHUT
        np.testing.assert_allclose(change, expected, rtol=0, atol=F64 * 100)
    # what the shut gate still lets through: f_t c_{t-1}, with |c| <= t (|i g| < 1 a step)
    leak = _leak(before, x, slice(4, 8)) * x.shape[0]
    np.testing.assert_allclose(answer.cell, _lstm_by_hand(after, x), rtol=0, atol=leak + F64)
    # the original LSTM's cell does remember: its c is not i * g
    assert np.abs(_lstm_by_hand(before, x) - answer.cell).max() > 1e-2
    # the original is untouched
    np.testing.assert_array_equal(lstm.params["bias_ih_l0"], before["bias_ih_l0"])


def _gru_by_hand(params: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """PyTorch's GRU in NumPy, rows r, z, n: ``y (T, B, H)``."""
    H = params["weight_hh_l0"].shape[1]
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b_ih, b_hh = params["bias_ih_l0"], params["bias_hh_l0"]
    ys = []
    for x_t in x:
        gx, gh = x_t @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        ys.append(h)
    return np.stack(ys)


def test_01_exercise_3_open_update_gate_keeps_the_state():
    gru = kioku.nn.GRU(3, 4, dtype=np.float64, rng=41)
    x = np.random.default_rng(42).normal(size=(20, 2, 3)) * 3
    h0 = np.random.default_rng(43).uniform(-1, 1, (1, 2, 4))
    answer = nb01.exercise_3(gru, x, h0)
    # each step moves h by (1 - z)(n - h), |n - h| <= 2
    drift = 2 * _leak(gru.state_dict(), x, slice(4, 8)) * x.shape[0] + F64
    np.testing.assert_allclose(answer.y, np.broadcast_to(h0, answer.y.shape), rtol=0, atol=drift)
    np.testing.assert_allclose(answer.h_n, h0, rtol=0, atol=drift)
    kept = answer.gru.state_dict()
    np.testing.assert_allclose(answer.y, _gru_by_hand(kept, x, h0[0]), rtol=F64, atol=F64)
    # the reset gate raised the same way does not keep the state: it is the update gate
    reset = copy.deepcopy(gru)
    weights = reset.state_dict()
    weights["bias_ih_l0"][:4] += nb01.SHUT
    reset.load_state_dict(weights)
    assert np.abs(reset(x, h0)[1] - h0).max() > 1e-2
    # the defaults: the notebook's GRU keeps its h0 too
    default = nb01.exercise_3()
    np.testing.assert_allclose(default.y[-1], default.h_n[0], rtol=0, atol=0)
    assert np.abs(default.y - default.y[0]).max() < 1e-6
