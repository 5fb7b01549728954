"""The worked solutions of notebooks 02 and 03 (notebooks/solutions/), each answer checked
another way than the solution computes it: kioku's backward and PyTorch's autograd against
02's step backwards by hand, a run of the cell against the half-life and the bias, kioku's
own cell state against the running sum, the parameters kioku and PyTorch allocate against
03's count, kioku's bidirectional layer against the ragged batch by hand, and the tagger's
predictions on sentences it has not seen. Float64 wherever the check allows it."""

from __future__ import annotations

import numpy as np
import pytest
from notebook_solutions import load

import kioku
import kioku.inspect
from kioku.experiments.direction import ambiguous_sentences, encode, tagging_vocabulary

F64 = 1e-12  # float64 rounding through one step or a few of small matrices: far below this


nb02 = load("02_the_four_parts")
nb03 = load("03_stacked_and_bidirectional")


# --- notebook 02 -------------------------------------------------------------------------


def test_02_exercise_1_matches_kiokus_backward():
    lstm, x, (h0, c0), w_h, w_c = nb02.exercise_1_setup()
    answer = nb02.exercise_1()
    lstm.zero_grad()
    y, _ = lstm(x, (h0, c0))
    dy = np.broadcast_to(w_h, y.shape).copy()  # y[0] is h_1: L's w_h part
    dx, (dh0, dc0) = lstm.backward(dy, (np.zeros_like(h0), w_c.reshape(c0.shape)))
    np.testing.assert_allclose(answer.dx, dx[0, 0], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dh0, dh0[0, 0], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dc0, dc0[0, 0], rtol=0, atol=F64)
    # one sequence: each bias's gradient is the pre-activations' gradient itself
    np.testing.assert_allclose(answer.dgates, lstm.grads["bias_ih_l0"], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dgates, lstm.grads["bias_hh_l0"], rtol=0, atol=F64)


@pytest.mark.torch
def test_02_exercise_1_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    lstm, x, (h0, c0), w_h, w_c = nb02.exercise_1_setup()
    answer = nb02.exercise_1()
    cell = torch.nn.LSTMCell(lstm.input_size, lstm.hidden_size).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.from_numpy(lstm.params[name + "_l0"]))
    xt, ht, ct = (torch.tensor(a[0], requires_grad=True) for a in (x, h0, c0))
    h1, c1 = cell(xt, (ht, ct))
    ((torch.from_numpy(w_h) * h1).sum() + (torch.from_numpy(w_c) * c1).sum()).backward()
    np.testing.assert_allclose(answer.dx, xt.grad.numpy()[0], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dh0, ht.grad.numpy()[0], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dc0, ct.grad.numpy()[0], rtol=0, atol=F64)
    np.testing.assert_allclose(answer.dgates, cell.bias_ih.grad.numpy(), rtol=0, atol=F64)


def _remembered(forget_bias: float, steps: int) -> np.ndarray:
    """``c_t`` for t = 1..steps of a one-cell LSTM whose weights are zero, whose forget
    gate's bias is ``forget_bias`` and whose input gate is shut, from ``c_0 = 1``."""
    lstm = kioku.nn.LSTM(1, 1, dtype=np.float64, rng=0)
    weights = {name: np.zeros_like(value) for name, value in lstm.state_dict().items()}
    weights["bias_ih_l0"][1] = forget_bias  # rows i, f, g, o
    weights["bias_ih_l0"][0] = -60.0  # input gate σ(-60) ~ 1e-26: nothing is written
    lstm.load_state_dict(weights)
    with kioku.inspect.trace(lstm) as tr:
        lstm(np.zeros((steps, 1, 1)), (np.zeros((1, 1, 1)), np.ones((1, 1, 1))))
    return tr.get(layer=0).cell[:, 0, 0]


def test_02_exercise_2_half_life_and_bias_hold_in_a_run_of_the_cell():
    answer = nb02.exercise_2()
    assert answer.steps == 100
    # unit forget bias: half of the content is left between floor and ceil of the half-life
    cell = _remembered(1.0, 10)
    below, above = int(np.floor(answer.half_life)), int(np.ceil(answer.half_life))
    assert 1 <= below < above
    assert cell[below - 1] > 0.5 > cell[above - 1]
    # the answer's bias keeps half for 100 steps; a hundredth less does not
    assert abs(_remembered(answer.bias_for_steps, 100)[-1] - 0.5) < F64
    assert _remembered(answer.bias_for_steps - 0.01, 100)[-1] < 0.5 - 1e-4
    with pytest.raises(ValueError, match="steps"):
        nb02.exercise_2(0)


def test_02_exercise_3_running_sum_is_the_cell_kioku_computes():
    model, x = nb02.exercise_3_setup(400)
    answer = nb02.exercise_3((model, x))
    with kioku.inspect.trace(model) as tr:
        _, (_, c_n) = model(x)
    cell = tr.get(layer=0).cell.astype(np.float64)
    assert np.all(tr.get(layer=0).forget_gate == 1.0)
    # kioku adds in float32: each step's rounding is at most eps |c_t| + eps |i g|
    eps = np.finfo(np.float32).eps
    bound = eps * np.cumsum(np.abs(cell) + 1.0, axis=0)
    assert np.all(np.abs(answer.cell - cell) <= bound)
    np.testing.assert_allclose(answer.cell[-1], c_n[0], rtol=0, atol=bound[-1].max())
    # and it keeps growing: nothing takes out what the input gate let in
    assert answer.mean_abs[-1] > 4 * answer.mean_abs[49]


# --- notebook 03 -------------------------------------------------------------------------


SIZES = [((10, 20, 3), True), ((10, 20, 3), False), ((7, 5, 1), True), ((1, 64, 2), False)]


@pytest.mark.parametrize(("sizes", "bidirectional"), SIZES)
def test_03_exercise_1_counts_what_kioku_allocates(sizes, bidirectional):
    input_size, hidden_size, num_layers = sizes
    answer = nb03.exercise_1(input_size, hidden_size, num_layers, bidirectional)
    lstm = kioku.nn.LSTM(
        input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, rng=0
    )
    assert answer == sum(value.size for value in lstm.params.values())


@pytest.mark.torch
@pytest.mark.parametrize(("sizes", "bidirectional"), SIZES)
def test_03_exercise_1_counts_what_torch_allocates(sizes, bidirectional):
    input_size, hidden_size, num_layers = sizes
    answer = nb03.exercise_1(input_size, hidden_size, num_layers, bidirectional)
    torch = pytest.importorskip("torch")
    peer = torch.nn.LSTM(input_size, hidden_size, num_layers, bidirectional=bidirectional)
    assert answer == sum(p.numel() for p in peer.parameters())


def test_03_exercise_1_default_is_the_notebooks_question():
    assert nb03.exercise_1() == nb03.exercise_1(10, 20, 3, True)


def test_03_exercise_2_equals_the_bidirectional_layer_on_the_ragged_batch():
    lstm, x, lengths = nb03.exercise_2_setup()
    answer = nb03.exercise_2()
    y, _ = lstm(x, lengths=lengths)
    assert answer.shape == y.shape == (6, 3, 10)
    np.testing.assert_allclose(answer, y, rtol=0, atol=F64)
    # had the backward direction started at the padding, the short sequences would differ
    H = lstm.hidden_size
    padded_start, _ = lstm(x)
    assert np.abs(padded_start[:2, 2, H:] - y[:2, 2, H:]).max() > 1e-3


def test_03_exercise_3_forward_tagger_reading_backwards_gets_the_sense():
    tagger = nb03.exercise_3()
    assert not tagger.lstm.bidirectional
    unseen = ambiguous_sentences(np.random.default_rng(123), 400)
    words = tagging_vocabulary()
    ids, tags, lengths = encode(nb03.reverse(unseen), words)
    predicted = tagger.predict(ids, lengths)
    ambiguous = (np.arange(tags.shape[0])[:, None] < lengths) & (tags > 0)
    assert ambiguous.sum() == len(unseen)  # one ambiguous word per sentence
    assert (predicted == tags)[ambiguous].mean() > 0.95
    # the reversal undone, the same tagger meets the deciding word too late
    ids, tags, lengths = encode(unseen, words)
    ambiguous = (np.arange(tags.shape[0])[:, None] < lengths) & (tags > 0)
    assert (tagger.predict(ids, lengths) == tags)[ambiguous].mean() < 0.8
