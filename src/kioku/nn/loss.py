"""Losses that return their gradient: softmax cross-entropy and mean squared error.

Each function returns ``(loss, dinput)``: ``loss`` a Python float, ``dinput`` the
gradient of that loss for the first argument, same shape and dtype. Invalid positions
(``mask`` False, or a target equal to ``ignore_index``) add nothing to either and are
not counted in the mean. The classes wrap the functions for code that wants
``loss = criterion(...)`` then ``criterion.backward()``.
"""

from __future__ import annotations

import numpy as np

from ..kernels._threads import over_rows

REDUCTIONS = ("mean", "sum")


def _valid_mask(
    mask: np.ndarray | None, shape: tuple[int, ...], name: str = "mask"
) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, found {mask.shape}")
    return mask != 0


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Cross-entropy of ``softmax(logits)`` against integer ``targets``.

    ``logits (..., C)`` float; ``targets (...)`` integers in ``0..C-1`` (any value at
    invalid positions); ``mask (...)`` bool or 0/1, True where a target counts.
    ``reduction="mean"`` divides by the number of valid targets (a loss of 0 if there
    are none), ``"sum"`` does not. Computed with the log-sum-exp shift, so large logits
    do not overflow. Returns ``(loss, dlogits (..., C))``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, found {reduction!r}")
    logits = np.asarray(logits)
    if not np.issubdtype(logits.dtype, np.floating):
        raise TypeError(f"logits: expected a float array, found dtype {logits.dtype}")
    if logits.ndim < 1:
        raise ValueError("logits: expected shape (..., C), found a scalar")
    targets = np.asarray(targets)
    if targets.dtype == np.bool_ or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets: expected an integer array, found dtype {targets.dtype}")
    C = logits.shape[-1]
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets: expected shape {logits.shape[:-1]} (logits without the class axis), "
            f"found {targets.shape}"
        )
    valid = _valid_mask(mask, targets.shape)
    if ignore_index is not None:
        not_ignored = targets != ignore_index
        valid = not_ignored if valid is None else valid & not_ignored
    checked = targets if valid is None else targets[valid]
    if checked.size and (checked.min() < 0 or checked.max() >= C):
        bad = checked[(checked < 0) | (checked >= C)][0]
        raise ValueError(f"targets: expected class ids in 0..{C - 1}, found {int(bad)}")

    flat = logits.reshape(-1, C)
    safe_targets = targets.reshape(-1) if valid is None else np.where(valid, targets, 0).reshape(-1)
    weights = None if valid is None else valid.reshape(-1)
    count = flat.shape[0] if weights is None else int(weights.sum())
    scale = (1.0 / count if count else 0.0) if reduction == "mean" else None
    dlogits = np.empty_like(flat)  # the shifted logits, then their gradient
    nll = np.empty(flat.shape[0], flat.dtype)  # -log softmax(target) per row

    one = flat.dtype.type(1.0 if scale is None else scale)  # d(loss)/d(nll) of a valid row

    def rows(r0: int, r1: int) -> None:  # in blocks that stay in cache, on every thread
        block, d, t = flat[r0:r1], dlogits[r0:r1], safe_targets[r0:r1]
        at = np.arange(r1 - r0)
        np.subtract(block, block.max(axis=1, keepdims=True), out=d)
        target_logit = d[at, t]
        np.exp(d, out=d)
        sum_exp = d.sum(axis=1)
        nll[r0:r1] = np.log(sum_exp) - target_logit
        # (softmax - one-hot) * one * weight in one pass over the block: the softmax's
        # division, the weight and the reduction's scale are one factor per row
        row_scale = np.full(r1 - r0, one) if weights is None else weights[r0:r1] * one
        d *= (row_scale / sum_exp)[:, None]
        d[at, t] -= row_scale
        if weights is not None:
            nll[r0:r1] *= weights[r0:r1]

    over_rows(rows, flat.shape[0], C * flat.itemsize)
    total = float(np.sum(nll, dtype=np.float64))
    if scale is not None:
        total *= scale
    return total, dlogits.reshape(logits.shape)


def mse(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Mean squared error over the valid elements.

    ``pred`` and ``target`` of one shape ``(...)``; ``mask`` of that shape or of its
    leading axes (e.g. ``(T, B)`` for ``(T, B, F)``), True where elements count.
    Returns ``(loss, dpred)``; with ``"mean"`` the loss is divided by the number of
    valid elements.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, found {reduction!r}")
    pred = np.asarray(pred)
    if not np.issubdtype(pred.dtype, np.floating):
        raise TypeError(f"pred: expected a float array, found dtype {pred.dtype}")
    target = np.asarray(target)
    if target.shape != pred.shape:
        raise ValueError(
            f"target: expected shape {pred.shape} (that of pred), found {target.shape}"
        )
    if not (np.issubdtype(target.dtype, np.floating) or np.issubdtype(target.dtype, np.integer)):
        raise TypeError(f"target: expected a numeric array, found dtype {target.dtype}")
    diff = pred - target.astype(pred.dtype, copy=False)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != pred.shape[: mask.ndim]:
            raise ValueError(
                f"mask: expected shape {pred.shape} or leading axes of it, found {mask.shape}"
            )
        weights = np.broadcast_to(
            (mask != 0).reshape(mask.shape + (1,) * (pred.ndim - mask.ndim)), pred.shape
        )
        diff = diff * weights
        count = int(weights.sum())
    else:
        count = diff.size
    total = float(np.sum(diff * diff, dtype=np.float64))
    scale = (1.0 / count if count else 0.0) if reduction == "mean" else 1.0
    return total * scale, diff * pred.dtype.type(2.0 * scale)


class CrossEntropyLoss:
    """``loss = criterion(logits, targets, mask)``; ``criterion.backward()`` -> ``dlogits``."""

    def __init__(self, ignore_index: int | None = None, reduction: str = "mean") -> None:
        self.ignore_index, self.reduction = ignore_index, reduction
        self._grad: np.ndarray | None = None

    def __call__(
        self, logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
    ) -> float:
        """Loss of ``logits (..., C)`` against ``targets (...)``; keeps the gradient."""
        loss, self._grad = softmax_cross_entropy(
            logits, targets, mask, self.ignore_index, self.reduction
        )
        return loss

    def backward(self) -> np.ndarray:
        """``dlogits (..., C)`` of the last call."""
        if self._grad is None:
            raise RuntimeError("CrossEntropyLoss.backward called before the loss")
        return self._grad


class MSELoss:
    """``loss = criterion(pred, target, mask)``; ``criterion.backward()`` -> ``dpred``."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction
        self._grad: np.ndarray | None = None

    def __call__(
        self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None
    ) -> float:
        """Loss of ``pred (...)`` against ``target (...)``; keeps the gradient."""
        loss, self._grad = mse(pred, target, mask, self.reduction)
        return loss

    def backward(self) -> np.ndarray:
        """``dpred (...)`` of the last call."""
        if self._grad is None:
            raise RuntimeError("MSELoss.backward called before the loss")
        return self._grad
