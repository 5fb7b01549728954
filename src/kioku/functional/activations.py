"""Element-wise activations that are stable for any finite or infinite input.

The logistic sigmoid is written through tanh, ``sigmoid(x) = 0.5 * tanh(x / 2) + 0.5``:
tanh never overflows, so there is no ``exp`` overflow warning at ``|x| >= 100`` and
``sigmoid(+-inf)`` is exactly 1 or 0.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid of ``x`` (any shape); writes into ``out`` when given (may be ``x``)."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic tangent of ``x`` (any shape); writes into ``out`` when given."""
    return np.tanh(x, out=out)
