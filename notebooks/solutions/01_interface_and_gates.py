"""Worked solutions to the exercises of notebook 01, the LSTM's interface and its gates.

Each ``exercise_N`` computes its exercise's answer with kioku and NumPy and returns it;
called without arguments it works on what the notebook sets up (an LSTM and a GRU with
3 inputs and 4 units, ``x (6, 2, 3)``). ``tests/test_notebook_exercises_00_01.py`` checks
every answer another way (the whole sequence at once, kioku's LSTMCell, the GRU's
equations).

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` units, ``L`` layers.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

import kioku
import kioku.inspect

# A closed gate: sigmoid(-30) = 9.4e-14, an open one: sigmoid(30) = 1 - 9.4e-14.
SHUT = 30.0


def notebook_setup() -> tuple[kioku.nn.LSTM, kioku.nn.GRU, np.ndarray]:
    """The notebook's little LSTM and GRU (3 inputs, 4 units, ``rng=0``) and the
    ``x (6, 2, 3)`` it feeds them."""
    x = np.random.default_rng(0).normal(size=(6, 2, 3)).astype(np.float32)
    return kioku.nn.LSTM(3, 4, rng=0), kioku.nn.GRU(3, 4, rng=0), x


def exercise_1(
    lstm: kioku.nn.LSTM | None = None, x: np.ndarray | None = None, split: int = 3
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Carry the state on: run ``lstm`` over the first ``split`` steps of ``x (T, B, I)``,
    then over the rest starting from the state it ended in, ``(h_n, c_n)``, each
    ``(L, B, H)``. Returns the two pieces' ``y`` joined along time, ``(T, B, H)``, and the
    final ``(h_n, c_n)``: what one call over the whole sequence gives, since everything
    the layer keeps of the past is in ``h`` and ``c``."""
    if lstm is None or x is None:
        lstm, _, x = notebook_setup()
    if lstm.bidirectional:
        raise ValueError("lstm: expected one direction (a backward direction starts at the end)")
    if not 0 < split < x.shape[0]:
        raise ValueError(f"split: expected a step in 1..{x.shape[0] - 1}, found {split}")
    y_first, state = lstm(x[:split])
    y_rest, state = lstm(x[split:], state=state)
    return np.concatenate([y_first, y_rest]), state


class ShutGate(NamedTuple):
    """Exercise 2's answer: the LSTM with its forget gate shut (``lstm``) and the memory
    cell predicted from its gates alone, ``cell (T, B, H)``."""

    lstm: kioku.nn.LSTM
    cell: np.ndarray


def exercise_2(lstm: kioku.nn.LSTM | None = None, x: np.ndarray | None = None) -> ShutGate:
    """Shut the forget gate: a copy of the one-layer ``lstm`` whose forget bias (rows
    ``H:2H`` of ``bias_ih_l0``) is lowered by 30, so ``f_t = sigmoid(... - 30) ≈ 0``. Then
    ``c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t`` loses its first term and the cell holds only what
    this step wrote: ``c_t = i_t ⊙ g_t``, computed here from the traced input gate and
    candidate of ``x (T, B, I)`` (never from the traced cell).

    The exercise's last question: ``x[0]`` no longer reaches the last cell along ``c``. It
    still reaches it through ``h`` (the gates of every step read ``h_{t-1}``), but on the
    notebook's LSTM moving ``x[0]`` by 5 moves ``c_T`` by about 6e-6 instead of 0.05."""
    if lstm is None or x is None:
        lstm, _, x = notebook_setup()
    if lstm.num_layers != 1 or lstm.bidirectional:
        raise ValueError("lstm: expected a one-layer, one-direction LSTM")
    shut = copy.deepcopy(lstm)
    weights = shut.state_dict()
    H = shut.hidden_size
    weights["bias_ih_l0"][H : 2 * H] -= SHUT
    shut.load_state_dict(weights)
    with kioku.inspect.trace(shut) as tr:
        shut(x)
    record = tr.get(layer=0)
    return ShutGate(shut, record.input_gate * record.candidate)


class KeptState(NamedTuple):
    """Exercise 3's answer: the GRU whose update gate is held open (``gru``) and what it
    outputs for ``x`` from ``h0``: ``y (T, B, H)`` and ``h_n (1, B, H)``."""

    gru: kioku.nn.GRU
    y: np.ndarray
    h_n: np.ndarray


def exercise_3(
    gru: kioku.nn.GRU | None = None, x: np.ndarray | None = None, h0: np.ndarray | None = None
) -> KeptState:
    """The GRU's gate that keeps: ``h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}``, so the update
    gate ``z`` plays the forget gate's part (and ``1 - z`` the input gate's). A copy of
    the one-layer ``gru`` with the update rows (``H:2H``) of ``bias_ih_l0`` raised by 30
    has ``z ≈ 1``: it keeps ``h0 (1, B, H)`` (default: the numbers 1..B*H scaled into
    (-1, 1)) through every step of ``x (T, B, I)``, whatever the input."""
    if gru is None or x is None:
        _, gru, x = notebook_setup()
    if gru.num_layers != 1 or gru.bidirectional:
        raise ValueError("gru: expected a one-layer, one-direction GRU")
    B, H = x.shape[1], gru.hidden_size
    if h0 is None:
        h0 = np.linspace(-0.9, 0.9, B * H, dtype=gru.dtype).reshape(1, B, H)
    kept = copy.deepcopy(gru)
    weights = kept.state_dict()
    weights["bias_ih_l0"][H : 2 * H] += SHUT
    kept.load_state_dict(weights)
    y, h_n = kept(x, h0)
    return KeptState(kept, y, h_n)
