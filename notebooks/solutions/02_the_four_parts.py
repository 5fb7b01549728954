"""Worked solutions to the exercises of notebook 02, the four parts of the cell.

Each ``exercise_N`` computes its exercise's answer with kioku and NumPy and returns it;
called without arguments it works on what the notebook's exercise cell describes.
``tests/test_notebook_exercises_02_03.py`` checks every answer another way (kioku's
hand-derived backward, PyTorch's autograd, a run of the cell itself).

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` cells.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

import kioku
import kioku.inspect
from kioku.experiments.forgetting import StreamTagger, hold_forget_gate_open, recall_stream

# Exercise 1's cell: 3 inputs, 4 cells, float64 so that the checks agree to rounding.
STEP_INPUTS, STEP_CELLS = 3, 4
# Exercise 3's stream: as long as the notebook's forgetting run evaluates on.
STREAM_STEPS = 2000


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --- exercise 1: the four parts, backwards --------------------------------------------


def exercise_1_setup() -> tuple[kioku.nn.LSTM, np.ndarray, tuple, np.ndarray, np.ndarray]:
    """Exercise 1's data: ``lstm`` (one layer, 3 inputs, 4 cells, float64), ``x (1, 1, 3)``
    (one step of one sequence), the entering state ``(h0, c0)``, each ``(1, 1, 4)``, and
    the weights ``w_h (4,)`` and ``w_c (4,)`` of the loss ``L = sum(w_h * h_1) +
    sum(w_c * c_1)``."""
    rng = np.random.default_rng(7)
    lstm = kioku.nn.LSTM(STEP_INPUTS, STEP_CELLS, dtype=np.float64, rng=3)
    x = rng.standard_normal((1, 1, STEP_INPUTS))
    state = (rng.standard_normal((1, 1, STEP_CELLS)), rng.standard_normal((1, 1, STEP_CELLS)))
    return lstm, x, state, rng.standard_normal(STEP_CELLS), rng.standard_normal(STEP_CELLS)


class StepGradients(NamedTuple):
    """Exercise 1's answer: the gradient of ``L`` with respect to the four pre-activations
    ``dgates (4H,)`` in PyTorch's row order i, f, g, o, and with respect to the step's
    inputs: ``dx (I,)``, ``dh0 (H,)``, ``dc0 (H,)``."""

    dgates: np.ndarray
    dx: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray


def exercise_1(setup: tuple | None = None) -> StepGradients:
    """One LSTM step backwards, part by part: each line below is the derivative of one of
    the seed's six equations, read from the bottom (``h``) up (the gates).

    ``setup``: what :func:`exercise_1_setup` returns (its data by default)."""
    lstm, x, (h0, c0), w_h, w_c = exercise_1_setup() if setup is None else setup
    p = lstm.params
    x, h_prev, c_prev = x[0, 0], h0[0, 0], c0[0, 0]  # (I,), (H,), (H,)
    H = lstm.hidden_size
    # forward, keeping what the derivatives need
    a = p["weight_ih_l0"] @ x + p["weight_hh_l0"] @ h_prev + p["bias_ih_l0"] + p["bias_hh_l0"]
    i, f, o = _sigmoid(a[0:H]), _sigmoid(a[H : 2 * H]), _sigmoid(a[3 * H : 4 * H])
    g = np.tanh(a[2 * H : 3 * H])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    # backward: L = sum(w_h * h) + sum(w_c * c)
    dh = w_h
    do = dh * tanh_c  # h = o ⊙ tanh(c)
    dc = w_c + dh * o * (1 - tanh_c**2)  # c reaches L directly and through h
    df, dc_prev = dc * c_prev, dc * f  # c = f ⊙ c_prev + i ⊙ g
    di, dg = dc * g, dc * i
    dgates = np.concatenate(
        [
            di * i * (1 - i),  # σ' = σ (1 - σ)
            df * f * (1 - f),
            dg * (1 - g**2),  # tanh' = 1 - tanh²
            do * o * (1 - o),
        ]
    )
    # a = W_ih x + W_hh h_prev + b: the pre-activations' gradient flows back through W
    return StepGradients(
        dgates, p["weight_ih_l0"].T @ dgates, p["weight_hh_l0"].T @ dgates, dc_prev
    )


# --- exercise 2: how long a cell remembers --------------------------------------------


class Memory(NamedTuple):
    """Exercise 2's answer: ``half_life`` (steps after which a cell whose forget gate is
    ``σ(1)`` and whose input gate is shut holds half its content: kioku's and Keras's
    ``unit_forget_bias``), and ``bias_for_steps``: the smallest forget bias that keeps at
    least half the content for ``steps`` steps."""

    half_life: float
    bias_for_steps: float
    steps: int


def exercise_2(steps: int = 100) -> Memory:
    """With the input gate shut nothing is written, so ``c_n = f^n c_0``: the content
    halves when ``f^n = 1/2``, ``n = ln(1/2) / ln(f)``. Keeping half for ``steps`` steps
    needs ``f >= 2^(-1/steps)``, that is a pre-activation (the bias, with the weights at
    zero) of at least ``logit(f) = ln(f / (1 - f))``."""
    if steps < 1:
        raise ValueError(f"steps: expected a whole number >= 1, found {steps!r}")
    forget = 1.0 / (1.0 + math.exp(-1.0))
    half_life = math.log(0.5) / math.log(forget)
    needed = 0.5 ** (1.0 / steps)
    return Memory(half_life, math.log(needed / (1.0 - needed)), steps)


# --- exercise 3: without a forget gate, the cell is a running sum ---------------------


def exercise_3_setup(steps: int = STREAM_STEPS) -> tuple[StreamTagger, np.ndarray]:
    """The forgetting experiment's model with its forget gate held open (``f = 1``,
    untrained, 32 cells) and ``x (steps, 4, 6)``: four of the experiment's streams."""
    rng = np.random.default_rng(11)
    model = StreamTagger(32, rng)
    hold_forget_gate_open(model.lstm)
    x, _, _ = recall_stream(rng, 4, steps)
    return model, x


class RunningSum(NamedTuple):
    """Exercise 3's answer: ``cell (T, B, H)``, the cell at every step rebuilt from the
    gates alone, and ``mean_abs (T,)``, its mean size over cells and streams."""

    cell: np.ndarray
    mean_abs: np.ndarray


def exercise_3(setup: tuple | None = None) -> RunningSum:
    """With ``f = 1`` the update ``c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t`` is ``c_t = c_{t-1} +
    i_t ⊙ g_t``: the cell is the running sum of what the input gate let in, and nothing
    ever takes it out. Traced ``i`` and ``g`` suffice to rebuild it (state zero at the
    start). ``setup``: what :func:`exercise_3_setup` returns (its data by default)."""
    model, x = exercise_3_setup() if setup is None else setup
    with kioku.inspect.trace(model) as tr:
        model(x)
    record = tr.get(layer=0)
    written = record.input_gate.astype(np.float64) * record.candidate  # (T, B, H)
    cell = np.cumsum(written, axis=0)
    return RunningSum(cell, np.abs(cell).mean(axis=(1, 2)))
