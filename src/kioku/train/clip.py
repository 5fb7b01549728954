"""Global-norm gradient clipping, as ``torch.nn.utils.clip_grad_norm_``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _unique_grads(grads: Any) -> list[np.ndarray]:
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
    if not max_norm > 0:
        raise ValueError(f"max_norm: expected a number > 0, found {max_norm}")
    if norm_type not in (2, 2.0, float("inf")):
        raise ValueError(f"norm_type: expected 2 or inf, found {norm_type}")
    arrays = _unique_grads(grads)
    if not arrays:
        return 0.0
    if norm_type == float("inf"):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in arrays)
    else:
        total = float(np.sqrt(sum(float(np.vdot(g, g).real) for g in arrays)))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in arrays:
            g *= g.dtype.type(coef)
    return total
