"""Classification, tagging and forecasting tasks: padded batches, no carried state.

Data: ``classify`` reads ``label<TAB>text`` lines, ``tag`` (:mod:`kioku.train.tag_task`)
reads CoNLL-U (UPOS tags), ``forecast`` (:mod:`kioku.train.forecast_task`) reads a CSV
of numbers.
``settings.data`` is one file (examples shuffled with the run's seed and split 80/10/10,
stratified by label for classify; series split 80/10/10 in time order) or a folder whose
split files are found by their names (:func:`kioku.data.splits.find_splits`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..data.labeled import read_labeled, read_labeled_file
from ..data.padded import Example, PaddedBatcher
from ..data.splits import SplitFiles, find_splits, shuffled_split
from ..data.vocab import Vocabulary
from ..models import Model, SequenceClassifier
from .checkpoint import CheckpointError
from .lm_task import word_tokenizer
from .settings import TrainSettings, setting_error
from .task import BatchedTask

SPLITS = ("train", "valid", "test")
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x (T, B[, F]), lengths (B,), y


def split_source(data: str | None, task: str, suffixes: tuple[str, ...]) -> SplitFiles:
    """Where ``data`` puts each split (:func:`~kioku.data.splits.find_splits`); every
    refusal a ``setting_error`` of ``data`` in one line."""
    if data in (None, "stdlib", "ptb"):
        detail = f"task {task} needs a file or folder, found {data!r}"
        raise setting_error(ValueError, "data", detail)
    try:
        return find_splits(data, suffixes)
    except (FileNotFoundError, ValueError) as error:
        raise setting_error(type(error), "data", str(error)) from None


def read_splits(
    settings: TrainSettings, suffixes: tuple[str, ...], read, label_of=None
) -> tuple[dict[str, list], SplitFiles, str]:
    """The items ``read(path)`` gives for each split of ``settings.data``, where they
    came from, and how one file was split: a folder's split files, or one file shuffled
    with ``settings.seed`` and split in three (stratified by ``label_of(item)`` when
    given), or split by positions (``settings.one_file_split``)."""
    files = split_source(settings.data, settings.task, suffixes)
    if files.single is None:
        return {split: read(files.files[split]) for split in SPLITS}, files, ""
    items = read(files.single)
    if settings.one_file_split == "positions":
        parts = {s: [] for s in SPLITS}
        for i, item in enumerate(items):  # every 10th to valid, the one after it to test
            parts["valid" if i % 10 == 8 else "test" if i % 10 == 9 else "train"].append(item)
        return parts, files, "by positions: every 10th to valid, the next to test"
    labels = None if label_of is None else [label_of(item) for item in items]
    parts = shuffled_split(len(items), settings.seed, labels)
    how = f"shuffled with seed {settings.seed}" + (", stratified by label" if labels else "")
    return {split: [items[i] for i in parts[split]] for split in SPLITS}, files, how


class PaddedTask(BatchedTask):
    """What the three tasks share: a batcher per split, position state, no carry. A
    task says how a batch goes through the model in :meth:`batch_loss`."""

    kind = "padded"
    data_parallel = True  # train_step and measure take this rank's examples
    sources: list[str] = []  # lines saying which file fed which split (see from_settings)
    data_files: dict | None = None  # the absolute paths of the split files

    def said(self, files: SplitFiles, counts: dict[str, str], how: str) -> None:
        """Record where the splits came from (``files``), with each split's ``counts``;
        ``how``: how one file was split."""
        self.sources = files.describe(counts, how)
        self.data_files = files.to_dict()

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
        line = f"data: {self.kind}, examples {sizes}, batch {self.batch_size}"
        return "\n".join([*self.sources, line])

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        where = f" (parameters of step {best_step}, the best on valid)" if best_step else ""
        figures = self.describe(record).split("| ", 1)[1]
        return [f"test after {step} steps{where}: {figures}"]

    def state_dict(self) -> dict:
        files = {"data_files": self.data_files} if self.data_files else {}
        return {
            "kind": self.kind,
            **self.extra_state(),
            **files,
            "position": self.batcher.state_dict(),
        }

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

    def unknown_share(self, split: str) -> float:
        """The share of ``split``'s tokens that read as ``<unk>``."""
        ids = [e.tokens for e in self.splits[split]]
        ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        return float((ids == self.vocab.unk_id).mean()) if ids.size else 0.0

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
        if state.get("vocab") is None and "features" in state:
            raise CheckpointError(
                f"{source}: a model of float sequences ({state['features']} features) "
                "reads arrays from Python (kioku.load(run).predict(X)), not a file"
            )
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
        headers: dict[Path, str] = {}

        def read(path: Path) -> list[tuple[str, str]]:
            pairs, header = read_labeled_file(path, settings.header)
            if header is not None:
                headers[path] = header
            return pairs

        pairs, files, how = read_splits(settings, (".tsv", ".txt"), read, lambda p: p[0])
        task = cls.from_memory(pairs, settings)
        labels = task.labels
        counts = {}
        for split, items in pairs.items():
            held = Counter(label for label, _ in items)
            shown = ", ".join(f"{label} {held[label]}" for label in labels if held[label])
            counts[split] = f"{len(items):,} lines: {shown}"
        task.said(files, counts, how)
        for path, header in headers.items():
            task.sources.append(
                f"  {path.name}: line 1 read as a header ({header[:40]!r}); --no-header "
                "reads it as an example"
            )
        return task

    @classmethod
    def from_memory(
        cls, pairs: dict[str, list[tuple[str, str]]], settings: TrainSettings
    ) -> ClassifyTask:
        """The task over ``(label, text)`` pairs per split (``train`` and ``valid``, and
        ``test`` if given) held in memory: the vocabulary and the labels come from the
        training split, as from files (:meth:`from_settings` reads them into this)."""
        level = settings.level or "word"
        vocab = Vocabulary.build(
            (t for _, t in pairs["train"]),
            level,
            min_count=settings.min_count or 1,
            max_size=settings.max_vocab,
            tokenizer=word_tokenizer(settings, level),
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
        return read_labeled(path)  # a header line detected and left out

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
