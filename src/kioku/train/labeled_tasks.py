"""Classification, tagging and forecasting tasks: padded batches, no carried state.

Data: ``classify`` reads ``label<TAB>text`` lines, ``tag`` (:mod:`kioku.train.tag_task`)
reads CoNLL-U (UPOS tags), ``forecast`` (:mod:`kioku.train.forecast_task`) reads a CSV
of numbers.
``settings.data`` is one file (examples split deterministically: every 10th to valid,
the next to test; series split 80/10/10 in time) or a folder with ``train``/``valid``
(or ``dev``)/``test`` files of that kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.labeled import read_labeled
from ..data.padded import Example, PaddedBatcher
from ..data.vocab import Vocabulary
from ..models import Model, SequenceClassifier
from .checkpoint import CheckpointError
from .settings import TrainSettings, setting_error
from .task import BatchedTask

SPLITS = ("train", "valid", "test")
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x (T, B[, F]), lengths (B,), y


SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
"""The names a folder's split files may take: ``dev`` is the validation split of UD
treebanks (``en_ewt-ud-dev.conllu``)."""


def find_split_file(folder: Path, split: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder``'s file for ``split``: ``valid.tsv`` / ``dev.tsv`` exactly, else the one
    file ending in ``-dev.conllu`` or ``_dev.conllu`` (a UD treebank's naming)."""
    for name in SPLIT_NAMES[split]:
        for suffix in suffixes:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    hits = sorted(
        p
        for name in SPLIT_NAMES[split]
        for suffix in suffixes
        for sep in "-_"
        for p in folder.glob(f"*{sep}{name}{suffix}")
        if p.is_file()
    )
    return hits[0] if len(hits) == 1 else None


def split_files(data: str | None, task: str, suffixes: tuple[str, ...]) -> dict[str, Path] | Path:
    """A folder's ``train/valid/test`` files (``dev`` for ``valid`` too), or the single
    file ``data``."""
    if data in (None, "stdlib", "ptb"):
        detail = f"task {task} needs a file or folder, found {data!r}"
        raise setting_error(ValueError, "data", detail)
    path = Path(data)
    if path.is_dir():
        found = {}
        for split in SPLITS:
            hit = find_split_file(path, split, suffixes)
            if hit is None:
                options = [f"{n}{s}" for n in SPLIT_NAMES[split] for s in suffixes]
                detail = f"no {' or '.join(options)} (nor one *-{split}{suffixes[0]}) in {path}"
                raise setting_error(FileNotFoundError, "data", detail, path)
            found[split] = hit
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

    def measured(self, split: str) -> list[Example]:
        """The examples of ``split`` in the order :meth:`measure` batches them."""
        return self.splits[split]

    def figure_count(self) -> int:
        """How many sums :meth:`batch_figures` gives."""
        return 3

    def batch_figures(self, model: Model, batch: Batch) -> np.ndarray:
        """What :meth:`measure` sums over the batches of a split: the summed loss, the
        targets and the hits (a task may add more, then reads them in :meth:`record`)."""
        loss, n, correct = self.batch_loss(model, batch, backward=False)
        return np.array([loss * n, n, correct], np.float64)

    def record(self, sums: np.ndarray) -> dict:
        """The figures of a split from the sums of :meth:`batch_figures`."""
        total, count, hits = sums[:3]
        return {"loss": total / count, **self.metrics(total / count, hits, count)}

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """Mean loss over ``split`` (weighted by each batch's count) and the task's
        metrics, in eval mode."""
        batcher = PaddedBatcher(self.measured(split), self.batch_size, shuffle=False)
        sums = np.zeros(self.figure_count(), np.float64)
        parallel = self.parallel  # each rank measures its share of every batch
        with model.eval_mode():
            for batch in batcher.epoch_batches():
                examples = len(batch[1])
                if not parallel.bounds(examples)[2]:
                    continue
                sums += self.batch_figures(model, parallel.local(batch, examples))
        return self.record(np.array(parallel.sum(sums.tolist())))

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
        shown = ("accuracy", "unseen_accuracy", "rmse")
        extra = "".join(f" {k} {record[k]:.4f}" for k in shown if k in record)
        return (
            f"step {record['step']} epoch {record['epoch']} | {record['split']} "
            f"loss {record['loss']:.4f}{extra} | lr {record['lr']:.4g}"
        )

    def header(self) -> str:
        sizes = {s: len(v) for s, v in self.splits.items()}
        return f"data: {self.kind}, examples {sizes}, batch {self.batch_size}"

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        where = f" (parameters of step {best_step}, the best on valid)" if best_step else ""
        figures = self.describe(record).split("| ", 1)[1]
        return [f"test after {step} steps{where}: {figures}"]

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

    def targets(self, example: Example) -> np.ndarray:
        """The label ids of ``example`` that count (unseen tags, ``-1``, do not)."""
        y = np.atleast_1d(example.label)
        return y[y >= 0]

    def majority_label(self) -> str:
        """The training split's most frequent label (kept in the checkpoint, so that a
        file scored later is compared with the same baseline)."""
        if getattr(self, "_majority", None) in self.labels:
            return self._majority
        train = np.concatenate([self.targets(e) for e in self.splits["train"]])
        return self.labels[int(np.bincount(train, minlength=len(self.labels)).argmax())]

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """The loss and accuracy, and beside them ``majority_accuracy``: that of always
        answering the training split's most frequent label."""
        record = super().measure(model, split)
        label = self.labels.index(self.majority_label())
        scored = np.concatenate([self.targets(e) for e in self.splits[split]])
        record["majority_accuracy"] = float((scored == label).mean()) if scored.size else 0.0
        return record

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        return [
            *super().report(record, step, best_step),
            f"majority-class baseline ({self.majority_label()!r} always): "
            f"accuracy {record['majority_accuracy']:.4f}",
        ]

    def state_dict(self) -> dict:
        # kept for later baselines, not compared on resume (older runs lack it)
        return {**super().state_dict(), "majority": self.majority_label()}

    @classmethod
    def read_file(cls, path: Path) -> list:
        """The items of one data file of this task."""
        raise NotImplementedError  # pragma: no cover

    @classmethod
    def on_file(cls, state: dict, path: Path, batch_size: int, source: str) -> LabelTask:
        """The whole of ``path`` as split ``"all"``, encoded with a checkpoint's
        vocabulary and labels (``state``, its ``task`` field read from ``source``):
        unknown words become ``<unk>``."""
        vocab = Vocabulary.from_dict(state.get("vocab"), f"{source}: field 'task.vocab'")
        labels = state.get("labels")
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise CheckpointError(f"{source}: field 'task.labels': expected a list of names")
        examples = cls.encode(vocab, labels, cls.read_file(path), path)
        task = cls(vocab, labels, {"train": examples, "all": examples}, batch_size, 0)
        task._majority = state.get("majority")
        return task

    @classmethod
    def encode(cls, vocab: Vocabulary, labels: list[str], items: list, path: object) -> list:
        """``items`` of :meth:`read_file` as examples over ``vocab`` and ``labels``."""
        raise NotImplementedError  # pragma: no cover

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
            embed_dropout=settings.embed_dropout,
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
        vocab = Vocabulary.build(
            (t for _, t in pairs["train"]),
            settings.level or "word",
            min_count=settings.min_count or 1,
            max_size=settings.max_vocab,
        )
        labels = sorted({label for label, _ in pairs["train"]})
        splits = {}
        for split, items in pairs.items():
            try:
                splits[split] = cls.encode(vocab, labels, items, f"{split} split")
            except ValueError as error:
                raise setting_error(ValueError, "data", str(error)) from None
        return cls(vocab, labels, splits, settings.batch_size, settings.seed)

    @classmethod
    def read_file(cls, path: Path) -> list[tuple[str, str]]:
        return read_labeled(path)

    @classmethod
    def encode(
        cls, vocab: Vocabulary, labels: list[str], items: list[tuple[str, str]], path: object
    ) -> list[Example]:
        index = {label: i for i, label in enumerate(labels)}
        unknown = sorted({label for label, _ in items} - set(index))
        if unknown:
            raise ValueError(f"{path} has labels {unknown} not seen in train ({labels})")
        return [Example(vocab.encode(text), index[label]) for label, text in items]

    def model_options(self, settings: TrainSettings) -> dict:
        return {"bidirectional": bool(settings.bidirectional), "pooling": settings.pooling}

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, lengths, y = batch
        loss, logits = model.loss(x, y, lengths, backward=backward)
        return float(loss), y.size, int((logits.argmax(-1) == y).sum())
