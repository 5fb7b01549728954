"""Worked solutions to the exercises of notebook 00, the vanishing gradient.

Each ``exercise_N`` computes its exercise's answer with kioku and NumPy and returns it;
called without arguments it works on what the notebook's exercise cell sets up.
``tests/test_notebook_exercises_00_01.py`` checks every answer another way (kioku's own
backward, PyTorch's autograd, the task's definition).

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` units.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

import kioku
import kioku.inspect
from kioku.experiments.adding import LastStepRegressor, adding_batch
from kioku.experiments.common import optimiser, update
from kioku.nn.loss import mse

# The notebook's exercise cells use these; the defaults of the functions below are the same.
RNN_SIZE, RNN_STEPS = 16, 30
CELL_PATH_SIZE, CELL_PATH_STEPS = 8, 50


def exercise_1_setup() -> tuple[kioku.nn.RNN, np.ndarray]:
    """The untrained tanh RNN (2 inputs, 16 units) and ``x (30, 4, 2)`` of exercise 1."""
    rnn = kioku.nn.RNN(2, RNN_SIZE, rng=1)
    x, _ = adding_batch(np.random.default_rng(3), batch=4, steps=RNN_STEPS)
    return rnn, x


def exercise_1(rnn: kioku.nn.RNN | None = None, x: np.ndarray | None = None) -> np.ndarray:
    """One step back at a time, by hand: ``dL/dh_t`` of a one-layer tanh RNN for every step.

    The loss is the sum of the last output, ``L = sum(h_{T-1})`` (what
    ``kioku.inspect.gradient_flow`` uses), so ``dL/dh_{T-1}`` is all ones; each step back
    applies the notebook's formula ``dL/dh_{t-1} = W_hh^T ((1 - h_t^2) ⊙ dL/dh_t)``, which in
    NumPy's row layout (a batch of row vectors, ``h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b)``)
    is ``(dL/dh_t * (1 - h_t**2)) @ W_hh``.

    ``x (T, B, I)``; returns ``(T, B, H)``: row ``t`` is ``dL/dh_t``.
    """
    if rnn is None or x is None:
        rnn, x = exercise_1_setup()
    if rnn.num_layers != 1 or rnn.bidirectional or rnn.nonlinearity != "tanh":
        raise ValueError(
            "rnn: expected a one-layer, one-direction tanh kioku.nn.RNN, found "
            f"num_layers={rnn.num_layers}, bidirectional={rnn.bidirectional}, "
            f"nonlinearity={rnn.nonlinearity!r}"
        )
    y, _ = rnn(x)  # y[t] is h_t, (T, B, H)
    weight_hh = rnn.params["weight_hh_l0"]  # (H, H)
    grads = np.empty_like(y)
    grads[-1] = 1.0
    for t in range(y.shape[0] - 1, 0, -1):
        grads[t - 1] = (grads[t] * (1 - y[t] ** 2)) @ weight_hh
    return grads


def cell_path_lstm(forget_bias: float = 1.0, rng: int = 2) -> kioku.nn.LSTM:
    """An untrained one-layer LSTM (2 inputs, 8 cells) whose recurrent weights are zero, so
    that ``h_{t-1}`` no longer enters the gates, with its forget gate's bias set to
    ``forget_bias`` (``bias_ih`` rows ``H:2H``; ``bias_hh``'s forget rows zero)."""
    lstm = kioku.nn.LSTM(2, CELL_PATH_SIZE, rng=rng)
    H = lstm.hidden_size
    weights = lstm.state_dict()
    weights["weight_hh_l0"] = np.zeros_like(weights["weight_hh_l0"])
    weights["bias_ih_l0"][H : 2 * H] = forget_bias
    weights["bias_hh_l0"][H : 2 * H] = 0.0
    lstm.load_state_dict(weights)
    return lstm


def exercise_2_inputs() -> np.ndarray:
    """``x (50, 4, 2)``: the adding-problem inputs of exercise 2."""
    return adding_batch(np.random.default_rng(4), batch=4, steps=CELL_PATH_STEPS)[0]


class CellPath(NamedTuple):
    """Exercise 2's answer: ``dc (T, B, H)``, ``dL/dc_t`` by hand for every step of the
    given LSTM, and ``surviving``: for each forget bias, the share of the gradient norm at
    the last step that reaches step 0 along the cell (mean over the batch)."""

    dc: np.ndarray
    surviving: dict[float, float]


def cell_gradients_by_hand(lstm: kioku.nn.LSTM, x: np.ndarray) -> np.ndarray:
    """``dL/dc_t`` for every step of a one-layer LSTM without recurrent weights, from its
    gates alone: ``x (T, B, I)`` -> ``(T, B, H)``, with ``L = sum(h_{T-1})``.

    At the last step ``dL/dc = dL/dh ⊙ o ⊙ (1 - tanh(c)^2)`` (from ``h = o ⊙ tanh(c)``).
    With ``W_hh = 0`` nothing of ``h_{t-1}`` reaches the loss except through ``c_t``, so one
    step back along the cell multiplies by the forget gate and nothing else:
    ``dL/dc_{t-1} = f_t ⊙ dL/dc_t``.
    """
    if lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size:
        raise ValueError("lstm: expected a one-layer, one-direction LSTM without projection")
    if np.any(lstm.params["weight_hh_l0"]):
        raise ValueError(
            "lstm: expected weight_hh_l0 all zeros (the cell path alone, see cell_path_lstm), "
            f"found largest |weight| {np.abs(lstm.params['weight_hh_l0']).max():.3g}"
        )
    with kioku.inspect.trace(lstm) as tr:
        lstm(x)
    record = tr.get(layer=0)
    forget, output, cell = record.forget_gate, record.output_gate, record.cell  # (T, B, H)
    dc = np.empty_like(cell)
    dc[-1] = 1.0 * output[-1] * (1 - np.tanh(cell[-1]) ** 2)
    for t in range(cell.shape[0] - 1, 0, -1):
        dc[t - 1] = forget[t] * dc[t]
    return dc


def _surviving(dc: np.ndarray) -> float:
    norms = np.linalg.norm(dc.astype(np.float64), axis=2)  # (T, B)
    return float(np.mean(norms[0] / norms[-1]))


def exercise_2(
    lstm: kioku.nn.LSTM | None = None,
    x: np.ndarray | None = None,
    forget_biases: tuple[float, ...] = (1.0, 3.0, 5.0),
) -> CellPath:
    """The cell path alone: ``dL/dc_t`` by hand as a product of forget gates (see
    :func:`cell_gradients_by_hand`) for ``lstm`` on ``x (T, B, I)`` (default: the
    notebook's ``cell_path_lstm()`` and :func:`exercise_2_inputs`), then how much of it
    reaches step 0 when the forget bias is each of ``forget_biases`` (same weights
    otherwise). A bias of 1 keeps ``f`` near ``sigmoid(1) = 0.73``; 3 near 0.95; 5 near
    0.99: the share that survives 50 steps grows from about ``0.73**49`` to ``0.99**49``.
    """
    if lstm is None:
        lstm = cell_path_lstm()
    if x is None:
        x = exercise_2_inputs()
    surviving = {}
    for bias in forget_biases:
        variant = copy.deepcopy(lstm)
        weights = variant.state_dict()
        H = variant.hidden_size
        weights["bias_ih_l0"][H : 2 * H] = bias
        weights["bias_hh_l0"][H : 2 * H] = 0.0
        variant.load_state_dict(weights)
        surviving[float(bias)] = _surviving(cell_gradients_by_hand(variant, x))
    return CellPath(cell_gradients_by_hand(lstm, x), surviving)


def train_regressor(kind: str, updates: int = 600, steps: int = 40) -> LastStepRegressor:
    """The notebook's training at ``T = steps``: a ``kind`` ("rnn" or "lstm") regressor
    of the notebook's size, Adam, batches of 64, seed 0."""
    rng = np.random.default_rng(0)
    model = LastStepRegressor(kind, 2, 32 if kind == "lstm" else 64, rng)
    opt = optimiser(model, lr=0.01 if kind == "lstm" else 0.003)
    for _ in range(updates):
        x, y = adding_batch(rng, 64, steps)
        _, dpred = mse(model(x), y)
        model.backward(dpred)
        update(model, opt)
    return model


def marked_steps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x (T, B, 2)`` adding-problem inputs -> the first and the second marked step of
    each sequence, two ``(B,)`` integer arrays."""
    marks = x[:, :, 1] > 0.5
    if not np.all(marks.sum(axis=0) == 2):
        raise ValueError("x: expected exactly two marked steps per sequence (x[:, b, 1] == 1)")
    first = np.argmax(marks, axis=0)
    second = marks.shape[0] - 1 - np.argmax(marks[::-1], axis=0)
    return first, second


def exercise_3(
    model: LastStepRegressor | None = None,
    x: np.ndarray | None = None,
    which: str = "first",
    eps: float = 0.01,
) -> np.ndarray:
    """Does the network use the marked values? The slope of its answer with respect to the
    ``which`` ("first" or "second") marked value of each sequence, by central difference:
    ``(model(x + eps) - model(x - eps)) / (2 eps)``, the value nudged at that one step.

    The task's answer is ``0.5 + (x1 + x2) / 4``, so a network that solves it answers with a
    slope of 1/4 for both values; one that never learned to keep ``x1`` has a slope near 0
    for it. ``x (T, B, 2)`` (default: 500 test sequences of length 40); returns ``(B,)``.
    The default model is the LSTM trained as in the notebook.
    """
    if which not in ("first", "second"):
        raise ValueError(f"which: expected 'first' or 'second', found {which!r}")
    if model is None:
        model = train_regressor("lstm")
    if x is None:
        x = adding_batch(np.random.default_rng(5), 500, 40)[0]
    step = marked_steps(x)[0 if which == "first" else 1]
    rows = np.arange(x.shape[1])
    up, down = x.copy(), x.copy()
    up[step, rows, 0] += eps
    down[step, rows, 0] -= eps
    return (model(up).astype(np.float64) - model(down)) / (2 * eps)
