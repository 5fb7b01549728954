"""Classification, tagging and forecasting tasks: padded batches, no carried state.

Data: ``classify`` reads ``label<TAB>text`` lines, ``tag`` reads CoNLL-U (UPOS tags),
``forecast`` reads a CSV of numbers. ``--data`` is one file (examples split
deterministically: every 10th to valid, the next to test; series split 80/10/10 in
time) or a folder with ``train``/``valid``/``test`` files of that kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..data.conllu_io import read_conllu
from ..data.labeled import read_labeled
from ..data.padded import Example, PaddedBatcher
from ..data.timeseries import read_csv_series, windows
from ..data.vocab import Vocabulary
from ..nn.loss import mse, softmax_cross_entropy
from .checkpoint import CheckpointError

SPLITS = ("train", "valid", "test")


def split_files(data: str | None, task: str, suffixes: tuple[str, ...]) -> dict[str, Path] | Path:
    """A folder's ``train/valid/test`` files, or the single file ``data``."""
    if data in (None, "stdlib", "ptb"):
        raise ValueError(f"--data: --task {task} needs a file or folder, found {data!r}")
    path = Path(data)
    if path.is_dir():
        found = {}
        for split in SPLITS:
            options = [path / f"{split}{suffix}" for suffix in suffixes]
            hits = [p for p in options if p.is_file()]
            if not hits:
                raise FileNotFoundError(f"--data {path}: no {' or '.join(map(str, options))}")
            found[split] = hits[0]
        return found
    if not path.is_file():
        raise FileNotFoundError(f"--data: {path}: no such file or directory")
    return path


def split_examples(items: list) -> dict[str, list]:
    """Every 10th item to valid, the one after it to test, the rest to train."""
    parts = {s: [] for s in SPLITS}
    for i, item in enumerate(items):
        parts["valid" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(item)
    return parts


class PaddedTask:
    """What the three tasks share: a batcher per split, position state, no carry."""

    kind = "padded"
    unit = "loss"

    def __init__(self, splits: dict[str, list[Example]], batch_size: int, seed: int) -> None:
        self.splits = splits
        self.batch_size = batch_size
        self.batcher = PaddedBatcher(splits["train"], batch_size, shuffle=True, seed=seed)

    @property
    def epoch(self) -> int:
        return self.batcher.epoch

    def batches_per_epoch(self) -> int:
        return len(self.batcher)

    def at_epoch_start(self) -> bool:
        return self.batcher.batch == 0

    def train_batches(self) -> Iterator:
        return self.batcher.epoch_batches()

    def snapshot(self):
        return self.batcher.state_dict()

    def rollback(self, snapshot) -> None:
        self.batcher.load_state_dict(snapshot)

    def evaluate(self, model, split: str) -> float:
        """Mean loss over ``split`` (weighted by each batch's count)."""
        batcher = PaddedBatcher(self.splits[split], self.batch_size, shuffle=False)
        was_training = model.training
        model.eval()
        total = count = hits = 0.0
        try:
            for batch in batcher.epoch_batches():
                loss, n, correct = self.batch_loss(model, batch, backward=False)
                total += loss * n
                count += n
                hits += correct
        finally:
            model.train(was_training)
        self.last_accuracy = hits / count  # classify, tag: share of labels predicted
        return total / count

    def train_step(self, model, batch) -> tuple[float, int]:
        loss, n, _ = self.batch_loss(model, batch, backward=True)
        return loss, int(batch[1].sum())

    def metrics(self, loss: float) -> dict[str, float]:
        return {}

    def describe_loss(self, loss: float) -> str:
        return f"loss {loss:.4f}"

    def describe(self, record: dict) -> str:
        extra = "".join(f" {k} {record[k]:.4f}" for k in ("accuracy", "rmse") if k in record)
        return (
            f"step {record['step']} epoch {record['epoch']} | {record['split']} "
            f"loss {record['loss']:.4f}{extra} | lr {record['lr']:.4g}"
        )

    def header(self) -> str:
        sizes = {s: len(v) for s, v in self.splits.items()}
        return f"data: {self.kind}, examples {sizes}, batch {self.batch_size}"

    def report(self, record: dict, step: int, result) -> list[str]:
        return [f"test after {step} steps: " + self.describe(record).split("| ", 1)[1]]

    def state_dict(self) -> dict:
        return {"kind": self.kind, **self.extra_state(), "position": self.batcher.state_dict()}

    def load_state_dict(self, state: dict, source: str) -> None:
        mine = self.extra_state()
        for key, value in mine.items():
            if state.get(key) != value:
                raise CheckpointError(
                    f"{source}: field 'task.{key}' does not match this run's data "
                    f"(the data gives another {key})"
                )
        self.batcher.load_state_dict(state["position"])

    def extra_state(self) -> dict:
        return {}


class ClassifyTask(PaddedTask):
    kind = "classify"

    def __init__(self, settings) -> None:
        source = split_files(settings.data, "classify", (".tsv", ".txt"))
        if isinstance(source, Path):
            pairs = split_examples(read_labeled(source))
        else:
            pairs = {s: read_labeled(p) for s, p in source.items()}
        level = settings.level or "word"
        self.vocab = Vocabulary.build((t for _, t in pairs["train"]), level)
        self.labels = sorted({label for label, _ in pairs["train"]})
        index = {label: i for i, label in enumerate(self.labels)}
        splits = {}
        for split, items in pairs.items():
            unknown = sorted({label for label, _ in items} - set(index))
            if unknown:
                raise ValueError(f"--data: {split} split has labels {unknown} not seen in train")
            splits[split] = [
                Example(self.vocab.encode(text), index[label]) for label, text in items
            ]
        super().__init__(splits, settings.batch_size, settings.seed)

    def extra_state(self) -> dict:
        return {"vocab": self.vocab.to_dict(), "labels": self.labels}

    def build_model(self, settings, rng, init):
        from ..models import SequenceClassifier

        return SequenceClassifier(
            len(self.vocab),
            settings.embed,
            settings.hidden,
            len(self.labels),
            settings.layers,
            bool(settings.bidirectional),
            settings.pooling,
            settings.dropout,
            rng=rng,
            init_range=init,
        )

    def batch_loss(self, model, batch, backward: bool):
        x, lengths, y = batch
        logits = model(x, lengths)
        loss, dlogits = softmax_cross_entropy(logits, y)
        if backward:
            model.backward(dlogits)
        return float(loss), y.size, int((logits.argmax(-1) == y).sum())

    def metrics(self, loss: float) -> dict[str, float]:
        return {"accuracy": getattr(self, "last_accuracy", math.nan)}


class TagTask(ClassifyTask):
    kind = "tag"

    def __init__(self, settings) -> None:
        source = split_files(settings.data, "tag", (".conllu",))
        if isinstance(source, Path):
            sentences = split_examples(read_conllu(source))
        else:
            sentences = {s: read_conllu(p) for s, p in source.items()}
        self.vocab = Vocabulary.build((" ".join(w) for w, _ in sentences["train"]), "word")
        self.labels = sorted({t for _, tags in sentences["train"] for t in tags})
        index = {t: i for i, t in enumerate(self.labels)}
        splits = {}
        for split, items in sentences.items():
            splits[split] = [
                Example(
                    np.array([self.vocab.index.get(w, 0) for w in words], np.int64),
                    np.array([index.get(t, -1) for t in tags], np.int64),
                )
                for words, tags in items
            ]
        PaddedTask.__init__(self, splits, settings.batch_size, settings.seed)

    def build_model(self, settings, rng, init):
        from ..models import SequenceTagger

        bidirectional = True if settings.bidirectional is None else bool(settings.bidirectional)
        return SequenceTagger(
            len(self.vocab),
            settings.embed,
            settings.hidden,
            len(self.labels),
            settings.layers,
            bidirectional,
            settings.dropout,
            rng=rng,
            init_range=init,
        )

    def batch_loss(self, model, batch, backward: bool):
        x, lengths, y = batch
        logits = model(x, lengths)
        mask = y >= 0
        loss, dlogits = softmax_cross_entropy(logits, np.where(mask, y, 0), mask=mask)
        if backward:
            model.backward(dlogits)
        return float(loss), int(mask.sum()), int(((logits.argmax(-1) == y) & mask).sum())


class ForecastTask(PaddedTask):
    """Windows of ``--window`` steps predict the next ``--horizon`` steps, on a series
    standardised with the training split's mean and standard deviation."""

    kind = "forecast"

    def __init__(self, settings) -> None:
        source = split_files(settings.data, "forecast", (".csv",))
        columns = settings.columns.split(",") if settings.columns else None
        if isinstance(source, Path):
            values, self.columns = read_csv_series(source, columns)
            n = values.shape[0]
            cuts = (int(n * 0.8), int(n * 0.9))
            series = {
                "train": values[: cuts[0]],
                "valid": values[cuts[0] : cuts[1]],
                "test": values[cuts[1] :],
            }
        else:
            series = {}
            for split, path in source.items():
                series[split], self.columns = read_csv_series(path, columns)
        self.mean = series["train"].mean(axis=0)
        self.std = series["train"].std(axis=0) + 1e-8
        self.window, self.horizon = settings.window, settings.horizon
        splits = {}
        for split, values in series.items():
            x, y = windows((values - self.mean) / self.std, self.window, self.horizon)
            splits[split] = [
                Example(x[:, w].astype(np.float32), y[:, w].astype(np.float32))
                for w in range(x.shape[1])
            ]
        super().__init__(splits, settings.batch_size, settings.seed)

    def extra_state(self) -> dict:
        return {"columns": self.columns, "window": self.window, "horizon": self.horizon}

    def build_model(self, settings, rng, init):
        from ..models import Forecaster

        return Forecaster(
            len(self.columns),
            settings.hidden,
            settings.layers,
            self.horizon,
            dropout=settings.dropout,
            rng=rng,
            init_range=init,
        )

    def batch_loss(self, model, batch, backward: bool):
        x, lengths, y = batch  # x (T, B, F) windows, y (H, B, F)
        pred = model(x)
        loss, dpred = mse(pred, np.transpose(y, (1, 0, 2)))
        if backward:
            model.backward(dpred)
        return float(loss), y.shape[1], 0

    def metrics(self, loss: float) -> dict[str, float]:
        return {"rmse": math.sqrt(loss)}


def build_labeled_task(settings):
    """The task of ``settings.task`` (classify, tag, forecast)."""
    tasks = {"classify": ClassifyTask, "tag": TagTask, "forecast": ForecastTask}
    if settings.task not in tasks:
        raise ValueError(f"--task: expected lm, classify, tag or forecast, found {settings.task!r}")
    return tasks[settings.task](settings)
