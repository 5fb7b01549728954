"""Layer normalisation over the last axis (Ba, Kiros and Hinton 2016), forward and backward.

``y = gamma * (v - mean(v)) / sqrt(var(v) + eps) + beta`` for each row ``v`` of the
last axis. The forward returns the normalised rows and ``1 / sqrt(var + eps)``, which
is all the backward needs.
"""

from __future__ import annotations

import numpy as np

LAYER_NORM_EPS = 1e-5


def layer_norm(
    v: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    out: np.ndarray,
    normalized: np.ndarray,
    eps: float = LAYER_NORM_EPS,
) -> np.ndarray:
    """Normalise ``v (..., N)`` over its last axis; ``gamma``, ``beta`` are ``(N,)``.

    Writes ``(v - mean) * inv_std`` into ``normalized`` and ``gamma * normalized + beta``
    into ``out`` (both shaped like ``v``; ``out`` may be ``v``). Returns
    ``inv_std (..., 1)``.
    """
    mean = v.mean(axis=-1, keepdims=True)
    np.subtract(v, mean, out=normalized)
    var = np.mean(normalized * normalized, axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    normalized *= inv_std
    np.multiply(normalized, gamma, out=out)
    out += beta
    return inv_std


def layer_norm_backward(
    dout: np.ndarray, normalized: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`layer_norm`: ``dout`` and ``normalized`` shaped ``(..., N)``,
    ``inv_std (..., 1)``. Returns ``dv (..., N)``, ``dgamma (N,)``, ``dbeta (N,)``."""
    axes = tuple(range(dout.ndim - 1))
    dgamma = (dout * normalized).sum(axis=axes)
    dbeta = dout.sum(axis=axes)
    dnorm = dout * gamma
    dv = dnorm - dnorm.mean(axis=-1, keepdims=True)
    dv -= normalized * (dnorm * normalized).mean(axis=-1, keepdims=True)
    dv *= inv_std
    return dv, dgamma, dbeta
