"""Numbers stay finite, or the run stops: the training loop's checks of each step.

A non-finite loss, gradient norm or parameter stops training at once with
:class:`TrainingDiverged`, whose message is one line: the step, what went non-finite,
the likely cause (learning rate, no clipping, initial weights) and the last finite
checkpoint, the one to use. Nothing non-finite is ever saved. A loss that runs away
from its first value (10 times it) is warned about once, before it overflows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .clip import clip_coefficient, grad_norm, unique_grads

RUNAWAY_FACTOR = 10.0  # a loss this many times its first value is warned about


class TrainingDiverged(RuntimeError):
    """Training stopped at ``step`` because ``what`` (``"loss"``, ``"gradient norm"``,
    a parameter's name, ``"validation loss"``) was not finite; ``checkpoint``: the last
    finite one of the run folder (``None``: none was saved)."""

    def __init__(self, message: str, step: int, what: str, checkpoint=None) -> None:
        super().__init__(message)
        self.step, self.what, self.checkpoint = step, what, checkpoint


def squared_norm(arrays: Iterable[np.ndarray]) -> float:
    """The sum of squares of ``arrays`` (unique ones), as a Python float: one read of
    each (``vdot``), no copy. Infinite when an array holds NaN or infinity, or when the
    sum overflows its dtype (then recomputed in float64 to tell the two apart)."""
    total, seen = 0.0, set()
    for array in arrays:
        if id(array) in seen or array.size == 0:
            continue
        seen.add(id(array))
        part = float(np.vdot(array, array).real)
        if not math.isfinite(part) and np.isfinite(array).all():  # large, finite: overflow
            part = float(np.vdot(array.astype(np.float64), array.astype(np.float64)))
        total += part
    return total


def check_step(loss: float, grads: list[np.ndarray], clip: float | None):
    """``(problem, scale)``: ``problem`` is ``(what, value)`` when ``loss`` or the
    gradient norm is not finite, else ``None``; ``scale`` is the factor that clips
    ``grads`` to norm ``clip`` (as :func:`kioku.train.clip.clip_grad_norm` would scale
    them; 1 without ``clip``), for the optimizer's step to apply
    (:meth:`kioku.train.optim.Optimizer.step_checked`). ``grads`` are only read."""
    if not math.isfinite(loss):
        return ("loss", loss), 1.0
    if clip:
        arrays = unique_grads(grads)
        norm = grad_norm(arrays)
        # an infinite norm scales every gradient by 0: that is a problem where a
        # gradient holds NaN or infinity, not where all are finite (a sum that
        # overflowed its dtype: the step is then one of zeros, as after clip_grad_norm)
        if not math.isfinite(norm) and not all(np.isfinite(g).all() for g in arrays):
            return ("gradient norm", norm), 1.0
        return None, clip_coefficient(norm, clip)
    norm = math.sqrt(squared_norm(grads))
    return (None if math.isfinite(norm) else ("gradient norm", norm)), 1.0


def last_checkpoint(out_dir: Path | None) -> Path | None:
    """The checkpoint ``latest.json`` of run folder ``out_dir`` names, if any."""
    if out_dir is None:
        return None
    from .checkpoint import CheckpointError, resolve

    try:
        return resolve(out_dir)
    except (FileNotFoundError, CheckpointError):
        return None


def first_nonfinite(named: Iterable[tuple[str, np.ndarray]]) -> str | None:
    """The name of the first array holding NaN or infinity, else ``None``."""
    for name, array in named:
        if array.size and not math.isfinite(float(np.vdot(array, array).real)):
            if not np.isfinite(array).all():
                return name
    return None


def likely_cause(what: str, step: int, lr: float, clip: float | None, init_range) -> str:
    """The likely causes of a non-finite ``what`` at ``step`` (1: the first step)."""
    causes = []
    if step <= 1 and what in ("loss", "gradient norm"):
        scale = f" (--init-range {init_range:g})" if init_range else ""
        causes.append(f"the initial weights are too large{scale} or the data holds huge values")
    if step > 1 or what not in ("loss",):
        causes.append(f"the learning rate {lr:g} is too high (try a smaller --lr)")
    if not clip:
        causes.append("no gradient clipping (try --clip 1)")
    return "; ".join(causes)


def diverged(
    what: str, value: float | None, step: int, lr: float, clip: float | None, init_range, last
) -> TrainingDiverged:
    """The :class:`TrainingDiverged` of a non-finite ``what`` at ``step``; ``last``: the
    last finite checkpoint (a path) or ``None``."""
    found = "not finite" if value is None else f"{value}"
    if last is not None:
        kept = f"the last finite checkpoint is {last}: use it (it is what latest.json names)"
    else:
        kept = "no checkpoint was saved before it"
    message = (
        f"training stopped at step {step}: the {what} is {found}; likely cause: "
        f"{likely_cause(what, step, lr, clip, init_range)}; {kept}"
    )
    return TrainingDiverged(message, step, what, last)


class RunawayWatch:
    """Warns once when a training loss exceeds :data:`RUNAWAY_FACTOR` times the first
    loss it saw (a positive one)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.warned = False

    def check(self, loss: float, step: int, lr: float, clip: float | None) -> str | None:
        """The warning line for ``loss`` at ``step``, once; ``None`` otherwise."""
        if self.first is None:
            self.first = loss if loss > 0 else None
            return None
        if self.warned or not loss > RUNAWAY_FACTOR * self.first:
            return None
        self.warned = True
        hint = "" if clip else " and no clipping (--clip)"
        return (
            f"warning: the loss {loss:.4g} at step {step} is {loss / self.first:.3g} times "
            f"its first value {self.first:.4g}: training may be diverging (learning rate "
            f"{lr:g}{hint}); it stops if the loss overflows"
        )
