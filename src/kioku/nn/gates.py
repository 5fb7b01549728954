"""The parameters a gated recurrent layer shares with PyTorch's: for ``G`` gate blocks of
``H`` units, ``weight_ih (G*H, I)``, ``weight_hh (G*H, R)`` (``R``: the width of the
recurrent state, ``H`` but for a projection) and the two biases ``bias_ih``,
``bias_hh (G*H,)``; their shapes, and adding one direction's gradients into them."""

from __future__ import annotations

import numpy as np

from .module import Module


def gate_shapes(
    gates: int, hidden_size: int, input_size: int, bias: bool, recurrent_size: int | None = None
) -> dict[str, tuple[int, ...]]:
    """``{"weight_ih": (G*H, I), "weight_hh": (G*H, R), "bias_ih": (G*H,), "bias_hh":
    (G*H,)}`` (no biases without ``bias``; ``R = recurrent_size or H``), in PyTorch's order."""
    rows = gates * hidden_size
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, recurrent_size or hidden_size)}
    if bias:
        shapes.update(bias_ih=(rows,), bias_hh=(rows,))
    return shapes


def add_gate_grads(
    module: Module,
    suffix: str,
    grads: object,
    dbias_ih: np.ndarray | None,
    dbias_hh: np.ndarray | None,
) -> None:
    """Add one direction's gradients (``grads.dweight_ih``, ``grads.dweight_hh`` and the
    two bias gradients, those only when ``module.bias``) into ``module.grads`` under the
    parameter names ending in ``suffix``."""
    g = module.grads
    g[f"weight_ih{suffix}"] += grads.dweight_ih
    g[f"weight_hh{suffix}"] += grads.dweight_hh
    if module.bias:
        g[f"bias_ih{suffix}"] += dbias_ih
        g[f"bias_hh{suffix}"] += dbias_hh
