"""Callbacks: what a run does at its events, as objects with Keras's names.

:class:`~kioku.train.loop.Trainer` calls each callback's ``on_train_begin(logs)``,
``on_batch_end(step, logs)`` after every optimizer step (``logs``: ``{"loss": ...}``),
``on_epoch_end(epoch, logs)`` after every validation (at each epoch's end when
``eval_every`` is 0, as the Python estimators set it) and ``on_train_end(logs)``.
A callback stops the run by returning ``True`` from one of them or by setting
``callback.stop = True``: the run ends cleanly after that step, its best checkpoint
kept. The ``logs`` of a validation read as Keras's: ``loss`` is the mean training loss
since the last validation, ``val_loss``, ``val_accuracy``, ... the validation figures,
beside ``epoch``, ``step`` and ``lr``.

What ``--patience`` and the best checkpoint pointer do is :class:`EarlyStopping` and
:class:`ModelCheckpoint`: the trainer builds them from its settings (the task's
selection figure, ``val_loss`` or ``val_accuracy``), so the command and Python share one
implementation. :class:`CSVLogger` writes one row per validation; :class:`TensorBoard`
writes event files through ``tensorboardX`` (the ``tensorboard`` extra).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.atomic import write_text_atomic

_NOT_FIGURES = frozenset({"step", "epoch", "split", "lr", "elapsed", "train_loss"})


def epoch_logs(record: Mapping[str, Any]) -> dict[str, float]:
    """Keras-style logs of a validation ``record`` (a :meth:`Trainer.evaluate` record):
    ``epoch``, ``step``, ``lr``, ``loss`` (the training loss since the last validation,
    when steps were taken) and each numeric figure ``k`` of the record as ``val_k``."""
    logs: dict[str, float] = {"epoch": int(record["epoch"]), "step": int(record["step"])}
    if "train_loss" in record:
        logs["loss"] = float(record["train_loss"])
    for key, value in record.items():
        if key in _NOT_FIGURES or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            logs[f"val_{key}"] = float(value)
    logs["lr"] = float(record["lr"])
    return logs


class Callback:
    """Does nothing at every event; subclass and override what you need. Set
    ``self.stop = True`` (or return ``True``) to end the run after the current step."""

    stop: bool = False

    def on_train_begin(self, logs: dict | None = None) -> bool | None:
        """Before the first step of this session."""

    def on_batch_end(self, step: int, logs: dict) -> bool | None:
        """After optimizer step ``step`` (counted from 1 over the whole run);
        ``logs["loss"]`` is its mean training loss."""

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        """After a validation in epoch ``epoch`` (see :func:`epoch_logs` for ``logs``)."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """After the last step, the run's checkpoints written."""


class _Monitor(Callback):
    """The best value of one figure of the logs and the validations since it improved."""

    def __init__(self, monitor: str = "val_loss", mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', found {mode!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a name such as 'val_loss', found {monitor!r}")
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.wait = 0  # validations since the best one

    def update(self, logs: Mapping[str, Any]) -> bool:
        """Whether ``logs[monitor]`` improves on the best so far (then it is the best);
        a missing figure is a ``KeyError`` naming the ones there are."""
        if self.monitor not in logs:
            found = sorted(k for k in logs if k.startswith("val_"))
            raise KeyError(f"monitor: expected one of {found}, found {self.monitor!r}")
        value = float(logs[self.monitor])
        best = self.best
        improved = best is None or (value < best if self.mode == "min" else value > best)
        if improved:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        return improved


class ModelCheckpoint(_Monitor):
    """Keeps the best parameters: the checkpoint written at a validation that improves
    ``monitor`` (``mode`` ``"min"`` or ``"max"``) becomes the run's best (``best.json``,
    what ``kioku.load`` and every command read). Given to ``fit`` it replaces the
    trainer's own (``val_loss``; ``val_accuracy`` for taggers)."""

    improved = False

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        self.improved = self.update(logs)
        return None


class EarlyStopping(_Monitor):
    """Stops a run after ``patience`` validations (>= 1) without an improvement of
    ``monitor``; what ``--patience`` does."""

    def __init__(self, monitor: str = "val_loss", patience: int = 1, mode: str = "min") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience: expected an integer >= 1, found {patience!r}")
        super().__init__(monitor, mode)
        self.patience = patience

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        self.update(logs)
        self.stop = self.wait >= self.patience
        return self.stop


class History(Callback):
    """Per-validation figures as Keras's ``History``: ``history`` maps each name of
    :func:`epoch_logs` (``loss``, ``val_loss``, ``val_accuracy``, ``lr``, ...) to the list
    of its values, one per validation; ``epoch`` lists the epochs."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            if key != "epoch":
                self.history.setdefault(key, []).append(value)
        return None

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class CSVLogger(Callback):
    """One CSV row per validation (the columns of :func:`epoch_logs`, fixed by the first
    row) in ``path``, rewritten atomically at each row; ``append=True`` keeps the rows a
    previous session wrote (a resumed run)."""

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append
        self.columns: list[str] | None = None
        self.rows: list[dict] = []

    def on_train_begin(self, logs: dict | None = None) -> bool | None:
        if self.append and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or []) or None
                self.rows = list(reader)
        else:
            self.columns, self.rows = None, []
        return None

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        if self.columns is None:
            self.columns = list(logs)
        self.rows.append({k: logs.get(k, "") for k in self.columns})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, buffer.getvalue())
        return None


class TensorBoard(Callback):
    """TensorBoard event files in ``log_dir``: each step's training loss (``train/loss``)
    and each validation's figures (``valid/loss``, ``valid/accuracy``, ..., ``lr``), by
    step. Needs ``tensorboardX`` (``pip install 'kioku-lstm[tensorboard]'``)."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        try:
            from tensorboardX import SummaryWriter  # noqa: F401
        except ImportError:
            raise ImportError(
                "tensorboard: writing event files needs tensorboardX "
                "(pip install 'kioku-lstm[tensorboard]')"
            ) from None
        self.log_dir = Path(log_dir)
        self.writer = None

    def on_train_begin(self, logs: dict | None = None) -> bool | None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))
        return None

    def on_batch_end(self, step: int, logs: dict) -> bool | None:
        loss = logs.get("loss")
        if self.writer is not None and loss is not None and math.isfinite(loss):
            self.writer.add_scalar("train/loss", loss, step)
        return None

    def on_epoch_end(self, epoch: int, logs: dict) -> bool | None:
        if self.writer is None:
            return None
        step = int(logs["step"])
        for key, value in logs.items():
            if key.startswith("val_"):
                self.writer.add_scalar(f"valid/{key[4:]}", value, step)
        self.writer.add_scalar("lr", logs["lr"], step)
        self.writer.flush()
        return None

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def from_settings(settings: Any, resumed: bool = False) -> list[Callback]:
    """The callbacks a run's settings turn on: ``csv_log`` (a CSV file; a relative
    path is under the run folder; a ``resumed`` run appends to it) and ``tensorboard``
    (an event folder)."""
    out: list[Callback] = []
    folder = Path(settings.out) if settings.out else Path(".")
    csv_log = getattr(settings, "csv_log", None)
    if csv_log:
        path = Path(csv_log)
        out.append(CSVLogger(path if path.is_absolute() else folder / path, append=resumed))
    board = getattr(settings, "tensorboard", None)
    if board:
        out.append(TensorBoard(board))
    return out


__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "TensorBoard",
    "epoch_logs",
    "from_settings",
]
