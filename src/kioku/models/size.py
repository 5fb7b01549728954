"""How much memory a model and its training take, from its sizes alone: counted with the
same formulas the layers use to allocate, in Python integers, so that a size of 10**12 is
refused with a figure before a single array exists.

``settings`` is any object with a run's fields (:class:`~kioku.train.TrainSettings`
or one like it): ``task``, ``cell``, ``heads``, ``hidden``, ``layers``, ``embed``,
``tie_weights``, ``bidirectional``, ``char_embed``, ``char_hidden``, ``window``,
``horizon``, ``bptt``, ``batch_size``, ``columns``, ``optimizer``, ``momentum``. The
sizes only the data decides (``vocab_size``, ``num_outputs``: classes or tags,
``input_size``: series, ``char_vocab_size``) default to their smallest possible values,
so that an estimate made before the data is read is a lower bound.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

FLOAT_BYTES = 4
"""Bytes per parameter and activation: training runs in float32."""

GATES = {"lstm": 4, "gru": 3, "slstm": 4}
"""Gate blocks per cell: the rows of ``weight_ih`` are ``GATES[cell] * hidden``."""

STEP_CACHE = {"lstm": 7, "gru": 5, "slstm": 8}
"""Numbers per cell that a training step keeps for its backward, in units of ``hidden``
(the LSTM: four gates, the cell, its tanh and the hidden state)."""


def recurrent_parameters(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool, heads: int = 1
) -> int:
    """Parameters of a stacked recurrent layer of ``cell`` (``"lstm"``, ``"gru"``,
    ``"slstm"``) whose first layer reads ``input_size`` features, the next ones the
    ``D * hidden`` outputs of the one below (``D`` = 2 when ``bidirectional``)."""
    directions = 2 if bidirectional else 1
    rows = GATES[cell] * hidden
    if cell == "slstm":  # a block-diagonal recurrence per head, one bias
        recurrent = rows * (hidden // max(heads, 1)) + rows
    else:  # weight_hh, bias_ih and bias_hh
        recurrent = rows * hidden + 2 * rows
    first = rows * input_size + recurrent
    above = rows * directions * hidden + recurrent  # every layer above the first
    return directions * (first + (layers - 1) * above)


def _linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def parameter_count(
    settings: Any,
    vocab_size: int | None = None,
    num_outputs: int | None = None,
    input_size: int | None = None,
    char_vocab_size: int | None = None,
) -> int:
    """The number of parameters (tied ones once) of the model ``settings`` builds for its
    task, given the sizes the data decides (each ``None``: its smallest possible value)."""
    task, cell, hidden = settings.task, settings.cell, settings.hidden
    heads, layers = settings.heads, settings.layers
    if task == "forecast":
        columns = settings.columns
        features = input_size or (len(columns.split(",")) if columns else 1)
        trunk = recurrent_parameters(cell, features, hidden, layers, False, heads)
        return trunk + _linear(hidden, settings.horizon * features)
    vocab = vocab_size or 2  # <unk> and <eos> at least
    embedding = vocab * settings.embed
    if task == "lm":
        trunk = recurrent_parameters(cell, settings.embed, hidden, layers, False, heads)
        decoder = vocab if settings.tie_weights else _linear(hidden, vocab)
        return embedding + trunk + decoder
    bidirectional = (
        bool(settings.bidirectional) if task == "classify" else settings.bidirectional is not False
    )
    extra = chars = 0
    if task == "tag" and settings.char_embed > 0:
        char_vocab = char_vocab_size or 1
        extra = 2 * settings.char_hidden
        chars = char_vocab * settings.char_embed + recurrent_parameters(
            "lstm", settings.char_embed, settings.char_hidden, 1, True
        )
    trunk = recurrent_parameters(cell, settings.embed + extra, hidden, layers, bidirectional, heads)
    outputs = num_outputs or (2 if task == "classify" else 1)
    head = _linear((2 if bidirectional else 1) * hidden, outputs)
    return embedding + trunk + head + chars


class Estimate(NamedTuple):
    """Bytes a training run needs: ``weights`` (the parameters), ``training`` (weights,
    gradients and the optimizer's ``states`` copies), ``activations`` (what one batch's
    forward keeps for its backward), ``total`` = training + activations."""

    weights: int
    training: int
    activations: int
    states: int

    @property
    def total(self) -> int:
        return self.training + self.activations


def optimizer_states(settings: Any) -> int:
    """Copies of the parameters the optimizer keeps: Adam's two moments, SGD's momentum."""
    if settings.optimizer in ("adam", "adamw"):
        return 2
    return 1 if settings.momentum else 0


def estimate(settings: Any, **sizes: int | None) -> Estimate:
    """What training the model of ``settings`` needs (``sizes``: those of
    :func:`parameter_count`); steps of a sequence the data decides count as one."""
    weights = parameter_count(settings, **sizes) * FLOAT_BYTES
    states = optimizer_states(settings)
    task, hidden = settings.task, settings.hidden
    steps = {"lm": settings.bptt or 1, "forecast": settings.window}.get(task, 1)
    directions = 2 if task in ("classify", "tag") and settings.bidirectional is not False else 1
    per_step = settings.layers * directions * STEP_CACHE[settings.cell] * hidden
    if task != "forecast":
        per_step += settings.embed
    if task == "lm":  # the logits and their softmax
        per_step += 2 * (sizes.get("vocab_size") or 2)
    activations = steps * settings.batch_size * per_step * FLOAT_BYTES
    return Estimate(weights, weights * (2 + states), activations, states)


def estimate_bytes(settings: Any, **sizes: int | None) -> int:
    """Bytes that training the model of ``settings`` needs at least: its weights, their
    gradients, the optimizer's copies and one batch's activations (see :func:`estimate`)."""
    return estimate(settings, **sizes).total


def available_bytes() -> int | None:
    """Memory this machine can give now without swapping: ``MemAvailable`` of
    ``/proc/meminfo``, else the free physical pages; ``None`` when neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def shown_bytes(count: int) -> str:
    """``count`` bytes for a reader: ``238 GiB``, ``1.5 MiB``, ``28 EiB``."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if value < 1024 or unit == "ZiB":
            break
        value /= 1024
    if unit == "bytes":
        return f"{count} bytes"
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
