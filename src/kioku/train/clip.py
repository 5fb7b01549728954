"""Global-norm gradient clipping, as ``torch.nn.utils.clip_grad_norm_``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def unique_grads(grads: Any) -> list[np.ndarray]:
    """The gradient arrays of ``grads`` (arrays, ``(parameter, gradient)`` pairs or a
    module), each array once (a tied gradient counts once); raises naming an item that
    is neither."""
    if hasattr(grads, "parameters") and callable(grads.parameters):
        grads = grads.parameters()
    unique, seen = [], set()
    for index, item in enumerate(grads):
        grad = item[1] if isinstance(item, tuple) else item
        if not isinstance(grad, np.ndarray):
            raise TypeError(
                f"grads[{index}]: expected a numpy array or a (parameter, gradient) pair, "
                f"found {type(item).__name__}"
            )
        if id(grad) not in seen:  # a tied gradient counts once
            seen.add(id(grad))
            unique.append(grad)
    return unique


def clip_grad_norm(grads: Iterable | Any, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients in place so that their joint norm is at most ``max_norm``.

    ``grads``: arrays of any shapes, ``(parameter, gradient)`` pairs, or a module.
    The norm is that of all elements together (``norm_type`` 2 or ``inf``); when it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (norm + 1e-6)``.
    Returns the norm before clipping (each array's squared norm in its dtype, summed
    as Python floats).
    """
    arrays = unique_grads(grads)
    total = grad_norm(arrays, norm_type)
    coef = clip_coefficient(total, max_norm)
    if coef != 1.0:
        for g in arrays:
            g *= g.dtype.type(coef)
    return total


def grad_norm(arrays: list[np.ndarray], norm_type: float = 2.0) -> float:
    """The joint norm of ``arrays`` (each counted once, as :func:`clip_grad_norm` counts
    them): 2 (each array's squared norm in its dtype, summed as Python floats) or
    ``inf`` (the largest absolute value); 0 for no arrays."""
    if norm_type not in (2, 2.0, float("inf")):
        raise ValueError(f"norm_type: expected 2 or inf, found {norm_type}")
    if not arrays:
        return 0.0
    if norm_type == float("inf"):
        return max(float(np.max(np.abs(g))) if g.size else 0.0 for g in arrays)
    return float(np.sqrt(sum(float(np.vdot(g, g).real) for g in arrays)))


def clip_coefficient(total: float, max_norm: float) -> float:
    """The factor that clipping to ``max_norm`` multiplies gradients of joint norm
    ``total`` by: ``max_norm / (total + 1e-6)`` where that is below 1, else 1 (0 for an
    infinite norm)."""
    if not max_norm > 0:
        raise ValueError(f"max_norm: expected a number > 0, found {max_norm}")
    coef = max_norm / (total + 1e-6)
    return coef if coef < 1.0 else 1.0
