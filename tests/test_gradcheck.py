"""Backprop through time against central differences, in float64, for every parameter,
the input and the initial state (relative error <= 1e-6)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cases import (
    check_case_gradients,
    check_gradients,
    check_layer_gradients,
    check_stacked_dropout_gradients,
    parameter_pairs,
    weighted_loss,
)

import kioku
from kioku import functional

TOL = 1e-6

CONFIGS = [
    # layers, bidirectional, bias, proj, lengths, state, merge
    (1, False, True, 0, False, False, "concat"),
    (1, True, True, 0, True, True, "concat"),
    (2, False, False, 0, False, True, "concat"),
    (2, True, True, 2, True, True, "concat"),
    (3, True, True, 0, False, False, "concat"),
    (3, False, True, 3, True, False, "concat"),
    (1, False, True, 2, False, True, "concat"),
    (2, True, True, 0, True, False, "sum"),
    (2, True, False, 0, False, True, "mean"),
    (2, True, True, 2, True, True, "mul"),
]


@pytest.mark.parametrize("layers,bidir,bias,proj,use_lengths,use_state,merge", CONFIGS)
def test_lstm_gradients_match_central_differences(
    layers, bidir, bias, proj, use_lengths, use_state, merge
):
    check_case_gradients(
        kioku.nn.LSTM, layers * 100 + bidir * 10 + proj, 4, use_lengths, use_state, tol=TOL,
        num_layers=layers, bias=bias, bidirectional=bidir, proj_size=proj, merge_mode=merge,
    )  # fmt: skip


def test_lstm_gradients_with_dropout_between_layers():
    check_stacked_dropout_gradients(kioku.nn.LSTM, tol=TOL)


@pytest.mark.parametrize("bidir,use_lengths", list(itertools.product([False, True], repeat=2)))
def test_rnn_gradients_match_central_differences(bidir, use_lengths):
    rng = np.random.default_rng(3)
    T, B, I, H = 5, 3, 2, 4
    rnn = kioku.nn.RNN(I, H, 2, bidirectional=bidir, dtype=np.float64, rng=rng)
    x = rng.normal(size=(T, B, I))
    D = 2 if bidir else 1
    h0 = rng.normal(size=(2 * D, B, H))
    lengths = np.array([1, 5, 3]) if use_lengths else None
    check_layer_gradients(rnn, rng, x, h0, lengths, TOL)


def test_relu_rnn_gradients():
    rng = np.random.default_rng(4)
    rnn = kioku.nn.RNN(3, 4, nonlinearity="relu", dtype=np.float64, rng=rng)
    x = rng.normal(size=(4, 2, 3))
    wy = rng.normal(size=(4, 2, 4))

    loss = weighted_loss(lambda: rnn(x)[0], (wy,))

    loss()
    rnn.zero_grad()
    dx, _ = rnn.backward(wy)
    check_gradients(loss, {**parameter_pairs(rnn), "x": (x, dx)}, TOL)


def test_cell_gradients_over_a_loop_of_steps():
    rng = np.random.default_rng(6)
    cell = kioku.nn.LSTMCell(3, 4, dtype=np.float64, rng=rng)
    xs = rng.normal(size=(3, 2, 3))
    h0, c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    wh, wc = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))

    def loss() -> float:
        state = (h0, c0)
        for x in xs:
            state = cell(x, state)
        cell._stack.clear()
        return float((state[0] * wh).sum() + (state[1] * wc).sum())

    loss()
    cell.zero_grad()
    state = (h0, c0)
    for x in xs:
        state = cell(x, state)
    dh, dc = wh, wc
    dxs = []
    for _ in xs:
        dx, (dh, dc) = cell.backward(dh, dc)
        dxs.append(dx)
    analytic = {"xs": (xs, np.stack(dxs[::-1])), "h0": (h0, dh), "c0": (c0, dc)}
    check_gradients(loss, {**parameter_pairs(cell), **analytic}, TOL)


def test_functional_state_traces_are_the_gradients_of_the_states():
    """dh_trace[t] is dL/dh_t: perturbing h_t's contribution is equivalent to
    perturbing the output y_t (y_t = h_t when no projection and no lengths)."""
    rng = np.random.default_rng(8)
    T, B, I, H = 4, 2, 3, 3
    x = rng.normal(size=(T, B, I))
    w_ih, w_hh = rng.normal(size=(4 * H, I)), rng.normal(size=(4 * H, H))
    wy = rng.normal(size=(T, B, H))
    _, _, _, cache = functional.lstm_forward(x, w_ih, w_hh)
    dh_trace, dc_trace = np.empty((T, B, H)), np.empty((T, B, H))
    functional.lstm_backward(wy, cache, dh_trace=dh_trace, dc_trace=dc_trace)
    # dL/dh_{T-1} is just the output weight of the last step
    np.testing.assert_allclose(dh_trace[-1], wy[-1])
    # dL/dc_t through h_t = o tanh(c_t), plus the path into c_{t+1}
    o, tc = cache.gates[-1, :, 3 * H :], cache.tanh_c[-1]
    np.testing.assert_allclose(dc_trace[-1], wy[-1] * o * (1 - tc**2))
