"""Tagging: one UPOS tag per word of CoNLL-U sentences, by a word (and character) BiLSTM.

Every token carries its word form's id in a :class:`~kioku.data.chars.FormTable` whose
first rows are the training split's forms, so "unseen in training" is one comparison.
With ``char_embed > 0`` the model also reads each form's characters (the char vocabulary
comes from the training split; a character it never saw reads as ``<unk>``). Word
dropout (``word_dropout`` alpha) reads a training token ``w`` as ``<unk>`` with
probability ``alpha / (alpha + count(w))``, so that ``<unk>`` is trained on rare words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.chars import FormTable, build_char_vocab
from ..data.conllu_io import read_conllu
from ..data.padded import Example
from ..data.vocab import Vocabulary
from ..models import Model, SequenceTagger
from ..models.tagger import tag_mask
from .checkpoint import CheckpointError
from .labeled_tasks import Batch, LabelTask, read_splits
from .lm_task import word_tokenizer
from .settings import TrainSettings

Sentences = list[tuple[list[str], list[str]]]


class TagTask(LabelTask):
    """One UPOS tag per word; a tag unseen in training is ``-1``, left out of the loss
    and the figures like padding. :meth:`measure` reports, beside the loss,
    ``accuracy`` over all tokens, ``unseen_accuracy`` over the tokens whose form (the
    exact, case-sensitive string) the training split never holds (with their count,
    ``unseen_tokens``) and ``seen_accuracy`` over the others (``seen_tokens``),
    ``per_tag``: each tag's precision, recall, F1 and support, and ``confused``: the five
    tag pairs most often mistaken for each other (:func:`confused_pairs`).
    The best parameters, and patience, follow dev accuracy, as taggers are judged: the
    dev loss turns up while the accuracy still climbs."""

    kind = "tag"
    selection = ("accuracy", "max")
    model_type = SequenceTagger

    def __init__(
        self,
        *args: Any,
        table: FormTable | None = None,
        train_forms: int = 0,
        word_dropout: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        """``args``, ``kwargs``: :class:`LabelTask`'s (vocab, labels, splits, batch_size,
        seed); ``table``: the forms of every split's ``Example.forms`` (its first
        ``train_forms`` rows the training split's); ``word_dropout (V,)``: each word id's
        probability of reading as ``<unk>`` in a training batch."""
        super().__init__(*args, **kwargs)
        self.table, self.train_forms = table, int(train_forms)
        self.batcher.word_dropout, self.batcher.unk = word_dropout, self.vocab.unk_id

    @property
    def char_vocab(self) -> Vocabulary | None:
        return None if self.table is None else self.table.char_vocab

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> TagTask:
        sentences, files, how = read_splits(settings, (".conllu",), read_conllu)
        task = cls.from_memory(sentences, settings)
        counts = {
            split: f"{len(items):,} sentences, {sum(len(w) for w, _ in items):,} words"
            for split, items in sentences.items()
        }
        task.said(files, counts, how)
        return task

    @classmethod
    def from_memory(cls, sentences: dict[str, Sentences], settings: TrainSettings) -> TagTask:
        """The task over ``(words, tags)`` sentences per split (``train`` and ``valid``,
        and ``test`` if given) held in memory: vocabularies, tags and word dropout from
        the training split, as from files (:meth:`from_settings` reads them into this)."""
        # words rarer than min_count become <unk> in training, so <unk> is trained for
        # the words a test sentence brings that training never saw
        vocab = Vocabulary.build(
            (" ".join(w) for w, _ in sentences["train"]),
            "word",
            min_count=settings.min_count or 1,
            max_size=settings.max_vocab,
        )
        # CoNLL-U is tokenized; the tokenizer splits the plain text given to predict
        vocab = Vocabulary(vocab.tokens, "word", word_tokenizer(settings, "word"))
        labels = sorted({t for _, tags in sentences["train"] for t in tags})
        chars = None
        if settings.char_embed:
            chars = build_char_vocab(w for words, _ in sentences["train"] for w in words)
        table = FormTable(chars)
        splits = {"train": cls.encode(vocab, labels, sentences["train"], "train", table)}
        train_forms = len(table)
        for split in (s for s in ("valid", "test") if s in sentences):
            splits[split] = cls.encode(vocab, labels, sentences[split], split, table)
        drop = None
        if settings.word_dropout:
            ids = np.concatenate([e.tokens for e in splits["train"]])
            counts = np.bincount(ids, minlength=len(vocab))
            alpha = settings.word_dropout
            drop = alpha / (alpha + counts)
        task = cls(
            vocab, labels, splits, settings.batch_size, settings.seed,
            table=table, train_forms=train_forms, word_dropout=drop,
        )  # fmt: skip
        task.batcher.sort_window = settings.sort_window
        return task

    @classmethod
    def read_file(cls, path: Path) -> Sentences:
        return read_conllu(path)

    @classmethod
    def encode(
        cls,
        vocab: Vocabulary,
        labels: list[str],
        items: Sentences,
        path: object,
        table: FormTable | None = None,
    ) -> list[Example]:
        """Sentences as examples over ``vocab`` and ``labels``, their forms added to
        ``table`` (none given: no forms)."""
        index = {t: i for i, t in enumerate(labels)}
        return [
            Example(
                np.array([vocab.index.get(w, vocab.unk_id) for w in words], np.int64),
                np.array([index.get(t, -1) for t in tags], np.int64),
                None if table is None else table.ids(words),
            )
            for words, tags in items
        ]

    @classmethod
    def on_file(cls, state: dict, path: Path, batch_size: int, source: str) -> TagTask:
        """The whole of ``path`` as split ``"all"`` with a checkpoint's vocabularies and
        labels; unseen means not among the checkpoint's ``train_forms`` (a checkpoint
        older than them: not in its word vocabulary)."""
        vocab = Vocabulary.from_dict(state.get("vocab"), f"{source}: field 'task.vocab'")
        labels = state.get("labels")
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise CheckpointError(f"{source}: field 'task.labels': expected a list of names")
        chars = state.get("char_vocab")
        if chars is not None:
            chars = Vocabulary.from_dict(chars, f"{source}: field 'task.char_vocab'")
        seen = state.get("train_forms", vocab.tokens[2:])
        if not (isinstance(seen, list) and all(isinstance(x, str) for x in seen)):
            raise CheckpointError(f"{source}: field 'task.train_forms': expected a list of words")
        table = FormTable(chars)
        table.ids(seen)
        examples = cls.encode(vocab, labels, cls.read_file(path), path, table)
        splits = {"train": examples, "all": examples}
        task = cls(vocab, labels, splits, batch_size, 0, table=table, train_forms=len(seen))
        task._majority = state.get("majority")
        return task

    def extra_state(self) -> dict:
        chars = self.char_vocab
        return {**super().extra_state(), **({"char_vocab": chars.to_dict()} if chars else {})}

    def state_dict(self) -> dict:
        # kept for scoring other files later, not compared on resume (older runs lack it)
        seen = self.table.forms[: self.train_forms] if self.table is not None else []
        return {**super().state_dict(), "train_forms": seen}

    def model_options(self, settings: TrainSettings) -> dict:
        # each tag sees both sides unless the settings say otherwise
        options = {"bidirectional": settings.bidirectional is not False}
        if self.char_vocab is not None:
            options.update(
                char_vocab_size=len(self.char_vocab),
                char_embed_size=settings.char_embed,
                char_hidden_size=settings.char_hidden,
            )
        return options

    def _run(self, model: Model, batch: Batch, backward: bool) -> tuple[float, np.ndarray]:
        """Loss and ``logits (T, B, K)`` of a batch ``(x, lengths, y[, forms])``."""
        x, lengths, y = batch[:3]
        chars = None
        if getattr(model, "char_encoder", None) is not None:
            if len(batch) < 4 or self.table is None:
                raise ValueError("batch: a model with characters needs the forms of its words")
            chars = self.table.char_batch(batch[3])
        return model.loss(x, y, lengths, backward=backward, chars=chars)

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        loss, logits = self._run(model, batch, backward)
        y, mask = batch[2], tag_mask(batch[2], batch[1])
        return float(loss), int(mask.sum()), int(((logits.argmax(-1) == y) & mask).sum())

    def loss_count(self, batch: Batch) -> int:
        return int(tag_mask(batch[2], batch[1]).sum())

    def measured(self, split: str) -> list[Example]:
        # by length: batches of similar lengths compute little padding; the figures are sums
        return sorted(self.splits[split], key=lambda e: len(e.tokens))

    def figure_count(self) -> int:
        return 5 + len(self.labels) ** 2

    def batch_figures(self, model: Model, batch: Batch) -> np.ndarray:
        """Loss sum, tokens, hits, unseen tokens, unseen hits, then the confusion
        counts (gold x predicted, flattened)."""
        loss, logits = self._run(model, batch, backward=False)
        y, mask = batch[2], tag_mask(batch[2], batch[1])
        predicted = logits.argmax(-1)
        hit = (predicted == y) & mask
        unseen = mask & (batch[3] >= self.train_forms) if len(batch) > 3 else mask & False
        K = len(self.labels)
        confusion = np.bincount(y[mask] * K + predicted[mask], minlength=K * K)
        n = mask.sum()
        head = [loss * n, n, hit.sum(), unseen.sum(), (hit & unseen).sum()]
        return np.concatenate([np.array(head, np.float64), confusion])

    def record(self, sums: np.ndarray) -> dict:
        record = super().record(sums)
        unseen, unseen_hits = sums[3:5]
        record["unseen_tokens"] = int(unseen)
        if unseen:
            record["unseen_accuracy"] = float(unseen_hits / unseen)
        seen, seen_hits = sums[1] - unseen, sums[2] - unseen_hits
        record["seen_tokens"] = int(seen)
        if seen:
            record["seen_accuracy"] = float(seen_hits / seen)
        K = len(self.labels)
        confusion = sums[5:].reshape(K, K)
        record["per_tag"] = per_tag_figures(confusion, self.labels)
        record["confused"] = confused_pairs(confusion, self.labels)
        return record

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        lines = super().report(record, step, best_step)
        return (
            lines
            + seen_unseen_lines(record)
            + per_tag_table(record.get("per_tag", {}))
            + (confused_table(record.get("confused", [])))
        )


def per_tag_figures(confusion: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Each tag's ``precision``, ``recall``, ``f1`` and ``support`` (gold tokens) from
    ``confusion (K, K)`` counts (row: gold tag, column: predicted); 0 where undefined."""
    gold, predicted, hits = confusion.sum(1), confusion.sum(0), np.diag(confusion)
    figures = {}
    for k, tag in enumerate(labels):
        p = float(hits[k] / predicted[k]) if predicted[k] else 0.0
        r = float(hits[k] / gold[k]) if gold[k] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        figures[tag] = {"precision": p, "recall": r, "f1": f1, "support": int(gold[k])}
    return figures


def per_tag_table(per_tag: dict[str, dict]) -> list[str]:
    """The lines of a per-tag table (precision, recall, F1, support), tags by support."""
    if not per_tag:
        return []
    lines = [f"{'tag':<8} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for tag, f in sorted(per_tag.items(), key=lambda item: -item[1]["support"]):
        lines.append(
            f"{tag:<8} {f['precision']:>9.4f} {f['recall']:>9.4f} {f['f1']:>9.4f} "
            f"{f['support']:>8d}"
        )
    return lines


def confused_pairs(confusion: np.ndarray, labels: list[str], top: int = 5) -> list[dict]:
    """The ``top`` tag pairs most often mistaken for each other in ``confusion (K, K)``
    counts (row: gold, column: predicted), both directions together: each a dict of
    ``tags`` ``[a, b]``, ``count`` (a tagged b plus b tagged a), ``a_as_b`` and
    ``b_as_a``; most confused first, ties in label order; pairs never confused left out."""
    c = np.asarray(confusion, np.int64)
    pairs = []
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            if c[a, b] + c[b, a]:
                pairs.append((-(c[a, b] + c[b, a]), a, b))
    return [
        {
            "tags": [labels[a], labels[b]],
            "count": int(-n),
            "a_as_b": int(c[a, b]),
            "b_as_a": int(c[b, a]),
        }
        for n, a, b in sorted(pairs)[:top]
    ]


def seen_unseen_lines(record: dict) -> list[str]:
    """Accuracy on the words seen in training and on the others, a line each (where the
    record has them)."""
    lines = []
    for name in ("seen", "unseen"):
        if f"{name}_accuracy" in record:
            lines.append(
                f"words {name} in training: {record[f'{name}_tokens']:,} tokens, "
                f"accuracy {record[f'{name}_accuracy']:.4f}"
            )
    return lines


def confused_table(confused: list[dict]) -> list[str]:
    """The lines of the most-confused-pairs table: each pair, its count and each
    direction (``gold->predicted``)."""
    if not confused:
        return []
    lines = [f"most confused tag pairs   {'errors':>6}   gold->predicted"]
    for pair in confused:
        a, b = pair["tags"]
        lines.append(
            f"{a + ' / ' + b:<24} {pair['count']:>7}   {a}->{b} {pair['a_as_b']}, "
            f"{b}->{a} {pair['b_as_a']}"
        )
    return lines
