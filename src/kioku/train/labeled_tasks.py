"""Classification, tagging and forecasting tasks: padded batches, no carried state.

Data: ``classify`` reads ``label<TAB>text`` lines, ``tag`` reads CoNLL-U (UPOS tags),
``forecast`` reads a CSV of numbers. ``settings.data`` is one file (examples split
deterministically: every 10th to valid, the next to test; series split 80/10/10 in
time) or a folder with ``train``/``valid``/``test`` files of that kind.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data.conllu_io import read_conllu
from ..data.labeled import read_labeled
from ..data.padded import Example, PaddedBatcher
from ..data.timeseries import read_csv_series, windows
from ..data.vocab import Vocabulary
from ..models import Forecaster, Model, SequenceClassifier, SequenceTagger
from ..models.tagger import tag_mask
from .checkpoint import CheckpointError
from .settings import TrainSettings, setting_error
from .task import BatchedTask

SPLITS = ("train", "valid", "test")
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x (T, B[, F]), lengths (B,), y


def split_files(data: str | None, task: str, suffixes: tuple[str, ...]) -> dict[str, Path] | Path:
    """A folder's ``train/valid/test`` files, or the single file ``data``."""
    if data in (None, "stdlib", "ptb"):
        detail = f"task {task} needs a file or folder, found {data!r}"
        raise setting_error(ValueError, "data", detail)
    path = Path(data)
    if path.is_dir():
        found = {}
        for split in SPLITS:
            options = [path / f"{split}{suffix}" for suffix in suffixes]
            hits = [p for p in options if p.is_file()]
            if not hits:
                detail = f"no {' or '.join(map(str, options))}"
                raise setting_error(FileNotFoundError, "data", detail, path)
            found[split] = hits[0]
        return found
    if not path.is_file():
        raise setting_error(FileNotFoundError, "data", f"{path}: no such file or directory")
    return path


def split_examples(items: list) -> dict[str, list]:
    """Every 10th item to valid, the one after it to test, the rest to train."""
    parts = {s: [] for s in SPLITS}
    for i, item in enumerate(items):
        parts["valid" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(item)
    return parts


def read_splits(data: str | None, task: str, suffixes: tuple[str, ...], read) -> dict[str, list]:
    """The items ``read(path)`` gives for each split: of the folder's split files, or
    of the one file split by :func:`split_examples`."""
    source = split_files(data, task, suffixes)
    if isinstance(source, Path):
        return split_examples(read(source))
    return {split: read(path) for split, path in source.items()}


class PaddedTask(BatchedTask):
    """What the three tasks share: a batcher per split, position state, no carry. A
    task says how a batch goes through the model in :meth:`batch_loss`."""

    kind = "padded"
    data_parallel = True  # train_step and measure take this rank's examples

    def __init__(self, splits: dict[str, list[Example]], batch_size: int, seed: int) -> None:
        self.splits = splits
        self.batch_size = batch_size
        self.batcher = PaddedBatcher(splits["train"], batch_size, shuffle=True, seed=seed)

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        """Mean loss of ``batch``, how many targets it averaged over, how many of them
        the model predicted (0 where that has no meaning)."""
        raise NotImplementedError  # pragma: no cover

    def metrics(self, loss: float, hits: float, count: float) -> dict[str, float]:
        """What the task shows beside the mean loss over a split."""
        return {}

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """Mean loss over ``split`` (weighted by each batch's count) and the task's
        metrics, in eval mode."""
        batcher = PaddedBatcher(self.splits[split], self.batch_size, shuffle=False)
        total = count = hits = 0.0
        parallel = self.parallel  # each rank measures its share of every batch
        with model.eval_mode():
            for batch in batcher.epoch_batches():
                examples = len(batch[1])
                if not parallel.bounds(examples)[2]:
                    continue
                local = parallel.local(batch, examples)
                loss, n, correct = self.batch_loss(model, local, backward=False)
                total += loss * n
                count += n
                hits += correct
        total, count, hits = parallel.sum([total, count, hits])
        return {"loss": total / count, **self.metrics(total / count, hits, count)}

    def train_step(self, model: Model, batch: Batch) -> tuple[float, int]:
        parallel = self.parallel
        if not parallel.active:
            loss, _, _ = self.batch_loss(model, batch, backward=True)
            return loss, int(batch[1].sum())
        examples = len(batch[1])
        with parallel.shard(examples) as (_, _, weight):
            local = parallel.local(batch, examples)
            loss, n, _ = self.batch_loss(model, local, backward=True)
        parallel.share = weight * n / max(self.loss_count(batch), 1)
        return loss, int(weight * local[1].sum())

    def loss_count(self, batch: Batch) -> int:
        """How many targets the mean loss of ``batch`` averages over."""
        return len(batch[1])

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

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
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
        """What the data decides beyond the examples (vocabulary, labels, columns): a
        resumed run's must be the same."""
        return {}


class LabelTask(PaddedTask):
    """Token sequences with labels from a fixed set: a vocabulary, label names, and the
    share of labels predicted (``accuracy``) beside the loss; the model is a
    ``model_type`` over the vocabulary with one output per label."""

    model_type: type[Model]

    def __init__(
        self,
        vocab: Vocabulary,
        labels: list[str],
        splits: dict[str, list[Example]],
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__(splits, batch_size, seed)
        self.vocab, self.labels = vocab, labels

    def extra_state(self) -> dict:
        return {"vocab": self.vocab.to_dict(), "labels": self.labels}

    def metrics(self, loss: float, hits: float, count: float) -> dict[str, float]:
        return {"accuracy": hits / count}

    def model_options(self, settings: TrainSettings) -> dict:
        """The model's arguments that only this task sets."""
        return {}

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> Model:
        return self.model_type(
            len(self.vocab),
            settings.embed,
            settings.hidden,
            len(self.labels),
            settings.layers,
            dropout=settings.dropout,
            rng=rng,
            init_range=init_range,
            **settings.cell_options(),
            **self.model_options(settings),
        )


class ClassifyTask(LabelTask):
    """One label per ``label<TAB>text`` line."""

    kind = "classify"
    model_type = SequenceClassifier

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> ClassifyTask:
        pairs = read_splits(settings.data, cls.kind, (".tsv", ".txt"), read_labeled)
        vocab = Vocabulary.build((t for _, t in pairs["train"]), settings.level or "word")
        labels = sorted({label for label, _ in pairs["train"]})
        index = {label: i for i, label in enumerate(labels)}
        splits = {}
        for split, items in pairs.items():
            unknown = sorted({label for label, _ in items} - set(index))
            if unknown:
                detail = f"{split} split has labels {unknown} not seen in train"
                raise setting_error(ValueError, "data", detail)
            splits[split] = [Example(vocab.encode(text), index[label]) for label, text in items]
        return cls(vocab, labels, splits, settings.batch_size, settings.seed)

    def model_options(self, settings: TrainSettings) -> dict:
        return {"bidirectional": bool(settings.bidirectional), "pooling": settings.pooling}

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, lengths, y = batch
        loss, logits = model.loss(x, y, lengths, backward=backward)
        return float(loss), y.size, int((logits.argmax(-1) == y).sum())


class TagTask(LabelTask):
    """One UPOS tag per word of CoNLL-U sentences; a tag unseen in training is ``-1``,
    left out of the loss and the accuracy like padding."""

    kind = "tag"
    model_type = SequenceTagger

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> TagTask:
        sentences = read_splits(settings.data, cls.kind, (".conllu",), read_conllu)
        vocab = Vocabulary.build((" ".join(w) for w, _ in sentences["train"]), "word")
        labels = sorted({t for _, tags in sentences["train"] for t in tags})
        index = {t: i for i, t in enumerate(labels)}
        splits = {}
        for split, items in sentences.items():
            splits[split] = [
                Example(
                    np.array([vocab.index.get(w, 0) for w in words], np.int64),
                    np.array([index.get(t, -1) for t in tags], np.int64),
                )
                for words, tags in items
            ]
        return cls(vocab, labels, splits, settings.batch_size, settings.seed)

    def model_options(self, settings: TrainSettings) -> dict:
        # each tag sees both sides unless the settings say otherwise
        return {"bidirectional": settings.bidirectional is not False}

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, lengths, y = batch
        loss, logits = model.loss(x, y, lengths, backward=backward)
        mask = tag_mask(y, lengths)
        return float(loss), int(mask.sum()), int(((logits.argmax(-1) == y) & mask).sum())

    def loss_count(self, batch: Batch) -> int:
        x, lengths, y = batch
        return int(tag_mask(y, lengths).sum())


def split_sizes(rows: int) -> tuple[int, int, int]:
    """Rows of train, valid and test when one file of ``rows`` is split 80/10/10."""
    cuts = (int(rows * 0.8), int(rows * 0.9))
    return cuts[0], cuts[1] - cuts[0], rows - cuts[1]


class ForecastTask(PaddedTask):
    """Windows of ``settings.window`` steps predict the next ``settings.horizon`` steps, on
    a series standardised with the training split's mean and standard deviation."""

    kind = "forecast"

    def __init__(
        self,
        series: dict[str, np.ndarray],
        columns: list[str],
        window: int,
        horizon: int,
        batch_size: int,
        seed: int,
    ) -> None:
        """``series``: per split, the values ``(N, F)`` of the ``F`` ``columns``."""
        self.columns, self.window, self.horizon = columns, window, horizon
        self.mean = series["train"].mean(axis=0)
        self.std = series["train"].std(axis=0) + 1e-8
        splits = {}
        for split, values in series.items():
            x, y = windows((values - self.mean) / self.std, window, horizon)
            splits[split] = [
                Example(x[:, w].astype(np.float32), y[:, w].astype(np.float32))
                for w in range(x.shape[1])
            ]
        super().__init__(splits, batch_size, seed)

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> ForecastTask:
        source = split_files(settings.data, cls.kind, (".csv",))
        wanted = settings.columns.split(",") if settings.columns else None
        steps = settings.window + settings.horizon  # one window, at least, in every split
        if isinstance(source, Path):
            need = next(n for n in range(steps, 100 * steps) if min(split_sizes(n)) >= steps)
            why = f"a window of {steps} steps in each of train, valid, test: 80/10/10"
            values, columns = read_csv_series(source, wanted, need, why)
            cuts = (int(values.shape[0] * 0.8), int(values.shape[0] * 0.9))
            series = dict(zip(SPLITS, np.split(values, cuts)))
        else:
            series = {}
            for split, path in source.items():
                why = f"one window of --window + --horizon = {steps} steps"
                series[split], columns = read_csv_series(path, wanted, steps, why)
        return cls(
            series, columns, settings.window, settings.horizon, settings.batch_size, settings.seed
        )

    def extra_state(self) -> dict:
        return {"columns": self.columns, "window": self.window, "horizon": self.horizon}

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> Forecaster:
        return Forecaster(
            len(self.columns),
            settings.hidden,
            settings.layers,
            self.horizon,
            dropout=settings.dropout,
            rng=rng,
            init_range=init_range,
            **settings.cell_options(),
        )

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, _, y = batch  # x (T, B, F) windows of one length, y (H, B, F)
        loss, _ = model.loss(x, np.transpose(y, (1, 0, 2)), backward=backward)
        return float(loss), y.shape[1], 0

    def metrics(self, loss: float, hits: float, count: float) -> dict[str, float]:
        return {"rmse": math.sqrt(loss)}
