"""Dropout: zero each feature with probability ``p`` and scale the rest by ``1/(1-p)``.

Variational dropout (Gal & Ghahramani 2016) draws one mask per sequence and reuses it
at every step: for a time-major ``(T, B, F)`` input the mask is ``(1, B, F)``. In eval
mode, or with ``p = 0``, the layer is the identity.
"""

from __future__ import annotations

import numpy as np

from .batch_shard import batch_random
from .module import Module, as_rng


class Dropout(Module):
    """Inverted dropout with probability ``p`` in ``[0, 1)``."""

    def __init__(
        self,
        p: float = 0.5,
        variational: bool = False,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p: expected a probability in [0, 1), found {p}")
        self.p = float(p)
        self.variational = bool(variational)
        self.rng = as_rng(rng)
        self.mask: np.ndarray | None = None  # the scaled mask of the last forward, or None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x (...)`` -> same shape; variational masks broadcast over axis 0 (time)."""
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        shape = (1,) + x.shape[1:] if self.variational and x.ndim >= 3 else x.shape
        # time-major (T, B, F): the batch is axis 1; (B, F): axis 0
        keep = batch_random(self.rng, shape, 1 if x.ndim >= 3 else 0) >= self.p
        self.mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` -> ``dx`` of the same shape, through the mask of the last forward."""
        return dy if self.mask is None else dy * self.mask

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"p": self.p, "variational": self.variational}
