"""Worked solutions to the exercises of notebook 03, stacked and bidirectional LSTMs.

Each ``exercise_N`` computes its exercise's answer with kioku and NumPy and returns it;
called without arguments it works on what the notebook's exercise cell describes.
``tests/test_notebook_exercises_02_03.py`` checks every answer another way (the
parameters kioku and PyTorch allocate, kioku's bidirectional layer on a ragged batch,
the tagger's predictions on sentences it has not seen).

Shapes: ``T`` steps, ``B`` sequences, ``I`` input features, ``H`` cells.
"""

from __future__ import annotations

import numpy as np

import kioku
from kioku.experiments.common import optimiser, update
from kioku.experiments.direction import ambiguous_sentences, encode, tagging_vocabulary
from kioku.models import SequenceTagger

# --- exercise 1: how many parameters ----------------------------------------------------


def exercise_1(
    input_size: int = 10, hidden_size: int = 20, num_layers: int = 3, bidirectional: bool = True
) -> int:
    """The number of parameters of ``kioku.nn.LSTM(input_size, hidden_size, num_layers,
    bidirectional=bidirectional)``, from the equations alone.

    Each direction of each layer has the four parts' weights on its input, ``4H x in``,
    on its own previous hidden state, ``4H x H``, and two biases of ``4H`` (PyTorch's
    ``bias_ih`` and ``bias_hh``). Layer 0 reads ``I`` features; every layer above reads
    the layer below's output, ``H`` wide, or ``2H`` when both directions are joined."""
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        width_in = input_size if layer == 0 else directions * hidden_size
        per_direction = 4 * hidden_size * (width_in + hidden_size) + 2 * 4 * hidden_size
        total += directions * per_direction
    return total


# --- exercise 2: both directions of a ragged batch, by hand ---------------------------


def exercise_2_setup() -> tuple[kioku.nn.LSTM, np.ndarray, np.ndarray]:
    """A bidirectional one-layer LSTM (3 inputs, 5 cells, float64), ``x (6, 3, 3)`` and
    ``lengths (3,)`` = 6, 4, 2: three sequences, two of them padded at the end."""
    lstm = kioku.nn.LSTM(3, 5, bidirectional=True, dtype=np.float64, rng=4)
    x = np.random.default_rng(8).standard_normal((6, 3, 3))
    return lstm, x, np.array([6, 4, 2])


def exercise_2(setup: tuple | None = None) -> np.ndarray:
    """``y (T, B, 2H)`` of a bidirectional LSTM on a ragged batch, from two one-direction
    LSTMs run on one sequence at a time: the forward one on ``x[:n]``, the backward one on
    ``x[:n]`` reversed (so it starts at the sequence's last real step, not at the padding),
    its outputs reversed back into place; past each length the output is zero.

    ``setup``: what :func:`exercise_2_setup` returns (its data by default)."""
    lstm, x, lengths = exercise_2_setup() if setup is None else setup
    if lstm.num_layers != 1 or not lstm.bidirectional:
        raise ValueError(
            "lstm: expected a one-layer bidirectional LSTM, found "
            f"num_layers={lstm.num_layers}, bidirectional={lstm.bidirectional}"
        )
    H = lstm.hidden_size
    directions = []
    for suffix in ("", "_reverse"):
        one = kioku.nn.LSTM(lstm.input_size, H, dtype=x.dtype)
        one.load_state_dict({name: lstm.params[name + suffix] for name in one.params})
        directions.append(one)
    forward, backward = directions
    T, B, _ = x.shape
    y = np.zeros((T, B, 2 * H), x.dtype)
    for b, n in enumerate(lengths):
        seq = x[:n, b : b + 1]  # (n, 1, I): the real steps only
        y[:n, b : b + 1, :H] = forward(seq)[0]
        y[:n, b : b + 1, H:] = backward(seq[::-1].copy())[0][::-1]
    return y


# --- exercise 3: a forward-only tagger that reads backwards ---------------------------


def reverse(sentences: list[tuple[list[str], list[int]]]) -> list[tuple[list[str], list[int]]]:
    """Each ``(words, tags)`` with its words and tags in reverse order."""
    return [(words[::-1], tags[::-1]) for words, tags in sentences]


def exercise_3(updates: int = 300, seed: int = 0) -> SequenceTagger:
    """A forward-only tagger (32 cells, as in the notebook) trained on the notebook's
    sentences read from the end: in ``. eat to like I that something is apple`` the word
    that decides the sense comes before "apple", so reading forwards is enough. Trained
    exactly as the notebook trains its taggers; returns the tagger (it expects sentences
    reversed with :func:`reverse`)."""
    words = tagging_vocabulary()
    rng = np.random.default_rng(seed)
    train = reverse(ambiguous_sentences(rng, 2000))
    rng = np.random.default_rng(seed)
    tagger = SequenceTagger(
        len(words), embed_size=32, hidden_size=32, num_tags=3, bidirectional=False, rng=rng
    )
    opt = optimiser(tagger, lr=0.01)
    for _ in range(updates):
        batch = [train[k] for k in rng.choice(len(train), 32, replace=False)]
        tagger.loss(*encode(batch, words))
        update(tagger, opt, max_norm=5.0)
    return tagger
