"""Shared by the Keras tests: the call options every recurrent layer is checked under,
random weights, and nested closeness of what Keras and kioku return."""

from __future__ import annotations

import numpy as np
from tolerance import assert_close, recurrent_depth

# the Keras and GRU interop tests' shapes, (B, T, I, H) = (3, 6, 4, 5), in at most 3 layers
# (10 inputs above a bidirectional first): every comparison within the rounding of that depth
DEPTH = recurrent_depth(6, 10, 5, layers=3, batch=3)

# Keras call options that any Keras recurrent layer takes (each layer adds its own)
CALL_CASES = {
    "sequences": dict(return_sequences=True),
    "last output": dict(),
    "go_backwards sequences state": dict(
        go_backwards=True, return_sequences=True, return_state=True
    ),
    "go_backwards last": dict(go_backwards=True),
}


def to_numpy(keras, outputs):
    """``outputs`` of a Keras call (a tensor, or a list of them) as NumPy arrays."""
    if isinstance(outputs, (list, tuple)):
        return [to_numpy(keras, o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def randomise(layer, rng: np.random.Generator) -> None:
    """Set every weight of the built Keras ``layer`` to U(-0.5, 0.5)."""
    layer.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


def compare(found, expected) -> None:
    """``found`` equals ``expected`` within the rounding of ``DEPTH`` roundings in
    ``expected``'s dtype: same shapes, and lists of the same length compared item by item."""
    if isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected)
        for f, e in zip(found, expected):
            compare(f, e)
        return
    assert_close("output", found, expected, DEPTH, expected.dtype)


def converted(layer, convert, rng: np.random.Generator, shape: tuple, dtype=np.float32):
    """Build the Keras ``layer`` for inputs of ``shape`` (B, T, I), give it random weights,
    and return ``convert(layer)`` (its kioku counterpart) with a random input of ``shape``."""
    layer.build((None, None, shape[-1]))
    randomise(layer, rng)
    return convert(layer), rng.standard_normal(shape).astype(dtype)


def compare_call(keras, ours, layer, x, **call) -> None:
    """``ours(x, **call)`` equals the Keras ``layer(x, **call)`` (see :func:`compare`)."""
    compare(ours(x, **call), to_numpy(keras, layer(x, **call)))
