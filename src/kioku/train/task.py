"""What the training loop asks of a task, and what the tasks share.

A task owns the data of a run: it builds the model that fits its data, hands out
training batches from a resumable position, and runs one batch through the model by
asking the model for its loss (and backward); it measures a split and says how its
figures read. The language model, classification, tagging and forecasting tasks all
implement :class:`Task`; :data:`kioku.train.setup.TASKS` maps ``settings.task`` to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol

import numpy as np

from ..models import Model
from .distributed import SINGLE_PROCESS, DataParallel
from .settings import TrainSettings


class Task(Protocol):
    """The contract between a task and :class:`kioku.train.loop.Trainer`."""

    kind: ClassVar[str]  # the name ``settings.task`` gives it, saved in checkpoints
    # the validation figure that picks the best parameters and counts patience:
    # (key of the measure() record, "min" or "max")
    selection: ClassVar[tuple[str, str]]

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> Task:
        """The task over ``settings.data``; errors name the settings field."""

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> Model:
        """A fresh model for this data, sized by ``settings``."""

    def sampler(self, model: Model, settings: TrainSettings) -> Callable[[int], str] | None:
        """A callback showing what the model generates at a step, or ``None``."""

    @property
    def epoch(self) -> int: ...

    def batches_per_epoch(self) -> int: ...

    def at_epoch_start(self) -> bool: ...

    def train_batches(self) -> Iterator[tuple[np.ndarray, ...]]:
        """The rest of the current epoch's batches, from the saved position."""

    def snapshot(self) -> Any:
        """The position (and carried state) before a batch, for :meth:`rollback`."""

    def rollback(self, snapshot: Any) -> None: ...

    def train_step(self, model: Model, batch: tuple[np.ndarray, ...]) -> tuple[float, int]:
        """Loss and backward of one batch (gradients accumulate in the model); returns
        the mean loss and the tokens (or examples) it covered."""

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """``{"loss": mean loss, ...metrics}`` of the model on ``split``, in eval mode."""

    def describe_loss(self, loss: float) -> str: ...

    def describe(self, record: dict) -> str:
        """One line for an evaluation record."""

    def header(self) -> str:
        """One line about the data, printed when a run starts."""

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        """The lines that close a run, from the test ``record``."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict, source: str) -> None:
        """Restore the position; refuse (naming ``source`` and the field) a checkpoint
        of other data."""


class BatchedTask:
    """What the tasks share: a ``batcher`` over the training split whose position is
    the task's, and a loss that is the first of :meth:`measure`'s figures."""

    kind: ClassVar[str]
    selection: ClassVar[tuple[str, str]] = ("loss", "min")
    batcher: Any  # StreamBatcher or PaddedBatcher: epoch, batch, epoch_batches, state
    parallel: DataParallel = SINGLE_PROCESS  # this rank's part of each batch (the trainer's)

    @property
    def epoch(self) -> int:
        return self.batcher.epoch

    def batches_per_epoch(self) -> int:
        return len(self.batcher)

    def at_epoch_start(self) -> bool:
        return self.batcher.batch == 0

    def train_batches(self) -> Iterator[tuple[np.ndarray, ...]]:
        return self.batcher.epoch_batches()

    def snapshot(self) -> Any:
        return self.batcher.state_dict()

    def rollback(self, snapshot: Any) -> None:
        self.batcher.load_state_dict(snapshot)

    def sampler(self, model: Model, settings: TrainSettings) -> Callable[[int], str] | None:
        return None

    def measure(self, model: Model, split: str) -> dict[str, float]:  # pragma: no cover
        raise NotImplementedError

    def unknown_share(self, split: str) -> float | None:
        """The share of ``split``'s tokens that read as ``<unk>`` (``None``: the task
        reads no tokens)."""
        return None

    def evaluate(self, model: Model, split: str) -> float:
        """Mean loss of the model on ``split`` (see :meth:`measure`)."""
        return self.measure(model, split)["loss"]
