"""Pooling a sequence of outputs ``(T, B, F)`` into one vector per sequence ``(B, F)``,
over each sequence's valid steps only, with the backward."""

from __future__ import annotations

import numpy as np

POOLINGS = ("last", "mean", "max")


class Pooling:
    """``last``: the output at the last valid step (for a bidirectional ``(T, B, 2H)``
    output, the forward half at the last valid step and the backward half at step 0,
    i.e. each direction's final state); ``mean``; ``max`` (element-wise)."""

    def __init__(self, mode: str, num_directions: int = 1) -> None:
        if mode not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, found {mode!r}")
        self.mode, self.num_directions = mode, num_directions
        self._cache: tuple | None = None

    def __call__(self, y: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``y (T, B, F)``, ``lengths (B,)`` or ``None`` (all ``T``) -> ``(B, F)``."""
        T, B, F = y.shape
        lengths = np.full(B, T) if lengths is None else np.asarray(lengths).astype(np.int64)
        batch = np.arange(B)
        if self.mode == "last":
            last = lengths - 1
            if self.num_directions == 1:
                pooled = y[last, batch]
            else:
                half = F // 2
                pooled = np.concatenate([y[last, batch, :half], y[0, :, half:]], axis=1)
            self._cache = (y.shape, y.dtype, last)
            return pooled
        valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
        if self.mode == "mean":
            scale = (1.0 / lengths).astype(y.dtype)[:, None]
            self._cache = (y.shape, y.dtype, valid, scale)
            return (y * valid).sum(axis=0) * scale
        masked = np.where(valid, y, -np.inf)
        argmax = masked.argmax(axis=0)  # (B, F)
        self._cache = (y.shape, y.dtype, argmax)
        return np.take_along_axis(y, argmax[None], axis=0)[0]

    def backward(self, dpooled: np.ndarray) -> np.ndarray:
        """``dpooled (B, F)`` -> ``dy (T, B, F)`` (zero at the steps that were not used)."""
        if self._cache is None:
            raise RuntimeError("Pooling.backward called before a forward")
        shape, dtype = self._cache[:2]
        T, B, F = shape
        if self.mode == "mean":
            valid, scale = self._cache[2:]
            return (valid * (dpooled * scale)[None]).astype(dtype, copy=False)
        dy = np.zeros(shape, dtype)
        batch = np.arange(B)
        if self.mode == "last":
            last = self._cache[2]
            if self.num_directions == 1:
                dy[last, batch] = dpooled
            else:
                half = F // 2
                dy[last, batch, :half] = dpooled[:, :half]
                dy[0, :, half:] += dpooled[:, half:]
            return dy
        argmax = self._cache[2]
        np.put_along_axis(dy, argmax[None], dpooled[None], axis=0)
        return dy
