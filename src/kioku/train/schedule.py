"""Learning-rate schedules: step decay (by epoch) and decay on a plateau of a metric.

Both change ``optimizer.lr`` in place and keep a JSON-able ``state_dict()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .optim import attributes


def _check_keys(state: Mapping[str, Any], expected: dict[str, Any], owner: str) -> None:
    if set(state) != set(expected):
        raise KeyError(
            f"state: expected keys {sorted(expected)} for {owner}, found {sorted(state)}"
        )


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs, starting
    once ``start_epoch`` epochs are done (default ``step_size``).

    Call :meth:`step` at the end of each epoch. After ``e`` completed epochs the rate is
    ``base_lr * gamma ** k`` with ``k = 0`` while ``e < start_epoch`` and
    ``k = 1 + (e - start_epoch) // step_size`` after. ``StepDecay(opt, 0.1, step_size=s)``
    is ``torch.optim.lr_scheduler.StepLR(opt, s, 0.1)``; Zaremba et al.'s rule (rate
    halved every epoch after the 4th: epochs 1-4 at lr, the 5th at lr/2, the 6th at lr/4)
    is ``StepDecay(opt, gamma=0.5, step_size=1, start_epoch=4)``.
    """

    def __init__(
        self, optimizer: Any, gamma: float, step_size: int = 1, start_epoch: int | None = None
    ) -> None:
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma: expected a number in (0, 1], found {gamma}")
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size: expected an integer >= 1, found {step_size!r}")
        start_epoch = step_size if start_epoch is None else start_epoch
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f"start_epoch: expected an integer >= 0, found {start_epoch!r}")
        self.optimizer = optimizer
        self.gamma, self.step_size, self.start_epoch = float(gamma), step_size, start_epoch
        self.base_lr = float(optimizer.lr)
        self.epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        """The rate after ``epoch`` completed epochs."""
        k = 0 if epoch < self.start_epoch else 1 + (epoch - self.start_epoch) // self.step_size
        return self.base_lr * self.gamma**k

    def step(self) -> float:
        """End of an epoch: set and return the rate for the next one."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        return attributes(self, ("gamma", "step_size", "start_epoch", "base_lr", "epoch"))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` and set the optimizer's rate to match it."""
        _check_keys(state, self.state_dict(), "StepDecay")
        self.gamma, self.base_lr = float(state["gamma"]), float(state["base_lr"])
        self.step_size, self.start_epoch = int(state["step_size"]), int(state["start_epoch"])
        self.epoch = int(state["epoch"])
        self.optimizer.lr = self.lr_at(self.epoch)


class ReduceOnPlateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: multiply the rate by ``factor``
    when the metric has not improved for more than ``patience`` evaluations.

    ``mode`` "min" (a loss) or "max"; an improvement beats the best by ``threshold``,
    relative (``threshold_mode="rel"``) or absolute ("abs"); after a reduction,
    ``cooldown`` evaluations pass before bad ones count again; the rate never goes
    below ``min_lr``, and a change smaller than ``eps`` is skipped.
    """

    # the options, then what the evaluations so far left
    _STATE = (
        "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
        "eps", "best", "num_bad_epochs", "cooldown_counter", "last_epoch",
    )  # fmt: skip

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', found {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', found {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor: expected a number in (0, 1), found {factor}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, found {patience!r}")
        if min_lr < 0:
            raise ValueError(f"min_lr: expected a number >= 0, found {min_lr}")
        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = float(factor), patience, float(threshold)
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.best: float | None = None  # None until the first metric
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best`` by more than the threshold."""
        if best is None:
            return not math.isnan(value)
        if self.mode == "min":
            bar = (
                best * (1 - self.threshold)
                if self.threshold_mode == "rel"
                else best - self.threshold
            )
            return value < bar
        bar = best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold
        return value > bar

    def step(self, metric: float) -> float:
        """Record one evaluation; return the (possibly reduced) rate."""
        value = float(metric)
        self.last_epoch += 1
        if self.is_better(value, self.best):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (``best`` is ``None`` before the first metric)."""
        return attributes(self, self._STATE)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the optimizer's rate is restored by the optimizer)."""
        _check_keys(state, self.state_dict(), "ReduceOnPlateau")
        for key, value in state.items():
            setattr(self, key, value)
        self.best = None if state["best"] is None else float(state["best"])
