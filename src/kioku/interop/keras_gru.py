"""Keras 3 in and out for the GRU: ``keras.layers.GRU`` and ``Bidirectional(GRU)`` <-> kioku.

Keras keeps ``kernel (I, 3H)`` and ``recurrent_kernel (H, 3H)`` with gates in order
z, r, h (kioku and PyTorch: r, z, n), so the conversion transposes and swaps the first
two blocks. ``reset_after=True`` (Keras' default) is PyTorch's GRU, and Keras keeps the
two biases as ``bias (2, 3H)`` = [input, recurrent]. ``reset_after=False`` multiplies
``h`` by the reset gate before the recurrent kernel and has one ``bias (3H,)``: it maps
to a kioku ``GRU(reset_after=False)`` with that bias as ``bias_ih`` and ``bias_hh = 0``
(there every bias sits outside the reset gate, so kioku's two are summed on the way
out). Keras' call semantics (``go_backwards``, ``return_sequences``, ``return_state``,
the Bidirectional merge modes) live in :class:`KerasGRU`, which wraps a kioku ``GRU``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..nn import GRU
from . import keras_io
from .keras_io import (
    KerasRecurrent,
    build_keras,
    import_keras,
    keras_call_options,
)

KIOKU_TO_KERAS_GATES = (1, 0, 2)  # r, z, n <-> z, r, h; its own inverse


def _require_keras():
    return keras_io._require_keras("from_keras_gru/to_keras_gru")


def swap_gates(array: np.ndarray, axis: int = 0) -> np.ndarray:
    """``array`` with its three gate blocks along ``axis`` taken in the other order
    (r, z, n <-> z, r, h)."""
    blocks = np.split(np.asarray(array), 3, axis=axis)
    return np.concatenate([blocks[i] for i in KIOKU_TO_KERAS_GATES], axis=axis)


class KerasGRU(KerasRecurrent):
    """A kioku ``GRU`` called as Keras calls its ``GRU`` (see
    :class:`~kioku.interop.keras_io.KerasRecurrent`): state ``[h]`` per direction."""

    @property
    def gru(self) -> GRU:
        return self.layer


def _gru_options(config: dict, ignore_dropout: bool) -> dict:
    """kioku ``GRU`` keyword arguments from a Keras GRU's ``get_config()``."""
    if config.get("stateful"):
        raise ValueError("stateful: kioku's GRU is not stateful across calls, found True")
    for name in ("dropout", "recurrent_dropout"):
        if config.get(name) and not ignore_dropout:
            raise ValueError(
                f"{name}: kioku's GRU has no dropout inside the layer (found {config[name]}); "
                "pass ignore_dropout=True to drop it (it acts in training only)"
            )
    for name, expected in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        value = config.get(name, expected)
        value = value if isinstance(value, str) else getattr(value, "__name__", repr(value))
        if value != expected:
            raise ValueError(f"{name}: kioku's GRU uses {expected}, found {value!r}")
    return {
        "bias": bool(config.get("use_bias", True)),
        "reset_after": bool(config.get("reset_after", True)),
    }


def _gru_shapes(gru: GRU) -> list[tuple[int, ...]]:
    """The shapes of a Keras GRU direction's weights for ``gru``."""
    H = gru.hidden_size
    bias_shape = (2, 3 * H) if gru.reset_after else (3 * H,)
    return [(gru.input_size, 3 * H), (H, 3 * H)] + ([bias_shape] if gru.bias else [])


def _gru_params(gru: GRU, weights: list[np.ndarray]) -> dict:
    """A Keras GRU direction's ``weights`` as ``gru``'s parameters (gates reordered)."""
    kernels = {"weight_ih": swap_gates(weights[0].T), "weight_hh": swap_gates(weights[1].T)}
    if not gru.bias:
        return kernels
    # one row without reset_after, else (input, recurrent)
    bias = weights[2].reshape(-1, 3 * gru.hidden_size)
    recurrent = swap_gates(bias[1]) if gru.reset_after else 0
    return {**kernels, "bias_ih": swap_gates(bias[0]), "bias_hh": recurrent}


def from_keras_gru(layer, ignore_dropout: bool = False) -> KerasGRU:
    """Wrap the weights and options of a built Keras 3 ``GRU`` or ``Bidirectional(GRU)`` in
    a :class:`KerasGRU` (its ``.gru`` is a ``batch_first`` kioku ``GRU``, with
    ``reset_after`` as the Keras layer's)."""
    keras_gru = _require_keras().layers.GRU
    options = partial(_gru_options, ignore_dropout=ignore_dropout)
    return import_keras(layer, keras_gru, GRU, options, _gru_shapes, _gru_params, KerasGRU)


def to_keras_gru(
    module: GRU | KerasGRU,
    return_sequences: bool = True,
    return_state: bool = False,
    go_backwards: bool = False,
):
    """A built Keras 3 ``GRU`` (``Bidirectional(GRU)`` for a bidirectional kioku GRU) with
    the weights of a one-layer kioku ``GRU`` and its ``reset_after``; a :class:`KerasGRU`
    brings its own call options. Stacked layers are refused (Keras stacks layers)."""
    keras = _require_keras()
    module, call, merge_mode = keras_call_options(
        module, GRU, KerasGRU, (return_sequences, return_state, go_backwards)
    )
    return_sequences, return_state, go_backwards = call
    if module.num_layers != 1:
        raise ValueError(
            f"num_layers: a Keras GRU layer has one layer, found {module.num_layers} "
            "(export each layer on its own)"
        )
    dtype = module.dtype.name

    def make(backwards: bool):
        return keras.layers.GRU(
            module.hidden_size, use_bias=module.bias, reset_after=module.reset_after,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=backwards, dtype=dtype,
        )  # fmt: skip

    def direction_weights(sfx: str) -> list[np.ndarray]:
        p = module.params
        weights = [swap_gates(p[f"weight_ih{sfx}"]).T, swap_gates(p[f"weight_hh{sfx}"]).T]
        if module.bias and module.reset_after:
            weights.append(
                np.stack([swap_gates(p[f"bias_ih{sfx}"]), swap_gates(p[f"bias_hh{sfx}"])])
            )
        elif module.bias:
            weights.append(swap_gates(p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"]))
        return weights

    return build_keras(module, make, go_backwards, merge_mode, direction_weights)
