"""Argument checks shared by the layers: each error names the argument, the expected
and the found value, and is raised before any state is touched."""

from __future__ import annotations

import numpy as np


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; ``ValueError``/``TypeError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, found {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, found {value}")
    return int(value)


def check_float_array(name: str, value: object, dtype: np.dtype) -> np.ndarray:
    """``value`` as an ndarray of exactly ``dtype`` (the module's); ``TypeError`` for a
    non-floating array or another float dtype (kioku never mixes precisions silently)."""
    if type(value) is np.ndarray and value.dtype == dtype:  # the common case, checked first
        return value
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name}: expected a floating array of dtype {dtype}, found dtype {array.dtype}"
        )
    if array.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {dtype} (the module's), found {array.dtype}; "
            f"convert with .astype(np.{dtype}) or build the module with dtype=np.{array.dtype}"
        )
    return array


def check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    """``ValueError`` unless ``array.shape == expected``."""
    if array.shape != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, found {array.shape}")
