"""Estimators over text: :class:`Classifier` (one label per text), :class:`Tagger` (one
tag per word) and :class:`LanguageModel` (next-token prediction, char or word level).

Each builds its task from the data given, by the task's own in-memory constructor
(``ClassifyTask.from_memory``, ``TagTask.from_memory``,
``LanguageModelTask.from_corpus``): vocabulary and labels from the training part, as
``kioku train`` builds them from files. ``kioku.LanguageModel`` is this estimator;
the model class it trains is :class:`kioku.models.LanguageModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import TokenScores
from ..data.chars import FormTable
from ..data.corpus import Corpus
from ..data.tokenize import sentence_words, tokenize_words
from ..train.labeled_tasks import ClassifyTask
from ..train.lm_task import LanguageModelTask, word_tokenizer
from ..train.settings import TrainSettings
from ..train.tag_task import TagTask
from .base import Estimator, holdout


def _texts(value: Any, name: str) -> list[str]:
    """``value`` as a list of texts; a ``TypeError`` naming ``name`` and the index of
    the first item that is no text."""
    if isinstance(value, str) or not isinstance(value, Sequence) and not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a list of texts, found {type(value).__name__}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}]: expected str, found {type(item).__name__}")
    return items


def _labels(value: Any, name: str, count: int, x_name: str) -> list[str]:
    """``value`` (one label per example) as label names (``str``)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected one label per example, found {type(value).__name__}")
    labels = [str(v.item() if isinstance(v, np.generic) else v) for v in value]
    if len(labels) != count:
        raise ValueError(f"{name}: expected {count} labels (one per {x_name}), found {len(labels)}")
    return labels


class Classifier(Estimator):
    """One label per text (``fit(texts, labels)``) or per float sequence (``fit(X,
    labels)`` with ``X (N, T, F)`` or a list of ``(T_i, F)`` arrays: the model reads the
    features, standardised with the training data's mean and deviation). Labels are
    kept as names (``str(label)``): ``predict`` answers them."""

    task = "classify"

    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        if _features(x):
            return self._feature_task(x, y, validation_data, settings)
        texts = _texts(x, "x")
        labels = _labels(y, "y", len(texts), "text")
        pairs = list(zip(labels, texts))
        if validation_data is None:
            parts = holdout(len(pairs), settings.seed, labels, self.validation_split)
            split = {s: [pairs[i] for i in idx] for s, idx in parts.items()}
        else:
            vx, vy = _pair(validation_data)
            vtexts = _texts(vx, "validation_data[0]")
            vlabels = _labels(vy, "validation_data[1]", len(vtexts), "text")
            split = {"train": pairs, "valid": list(zip(vlabels, vtexts))}
        return ClassifyTask.from_memory(split, settings)

    def _feature_task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings):
        from ..train.feature_tasks import FeatureClassifyTask, as_sequences

        sequences = as_sequences(x, "x")
        labels = _labels(y, "y", len(sequences), "sequence")
        if validation_data is None:
            parts = holdout(len(sequences), settings.seed, labels, self.validation_split)
            data = {
                s: ([sequences[i] for i in idx], [labels[i] for i in idx])
                for s, idx in parts.items()
            }
        else:
            vx, vy = _pair(validation_data)
            vseq = as_sequences(vx, "validation_data[0]")
            data = {
                "train": (sequences, labels),
                "valid": (vseq, _labels(vy, "validation_data[1]", len(vseq), "sequence")),
            }
        return FeatureClassifyTask.from_arrays(data, settings)

    def predict_proba(self, x: Any, batch_size: int = 64) -> np.ndarray:
        """Class probabilities ``(N, C)`` (columns in :attr:`labels` order) of texts (or
        of float sequences, for a classifier fitted on them)."""
        return self._fitted().predict_proba(x, batch_size)

    @property
    def labels(self) -> list[str]:
        """The label names, in the order of :meth:`predict_proba`'s columns."""
        return list(self._fitted().labels)

    def evaluate(self, x: Any, y: Any, batch_size: int = 64) -> dict[str, float]:
        """``{"accuracy", "loss", "majority_accuracy"}`` on texts ``x`` with labels ``y``
        (loss: mean cross-entropy in nats; majority: always answering the training
        data's most frequent label)."""
        p = self._fitted()
        if _features(x):
            from ..train.feature_tasks import FeatureClassifyTask, as_sequences, encode_arrays

            sequences = as_sequences(x, "x")
            names = _labels(y, "y", len(sequences), "sequence")
            examples = encode_arrays(p.labels, (p.mean, p.std), sequences, names, "y")
            splits = {"train": examples, "all": examples}
            task = FeatureClassifyTask(p.labels, splits, batch_size, 0, (p.mean, p.std))
            task._majority = self.task_.majority_label()
            return _figures(task.measure(p.model, "all"))
        texts = _texts(x, "x")
        pairs = list(zip(_labels(y, "y", len(texts), "text"), texts))
        try:
            examples = ClassifyTask.encode(p.vocab, p.labels, pairs, "y")
        except ValueError as error:
            raise ValueError(str(error)) from None
        task = ClassifyTask(p.vocab, p.labels, {"train": examples, "all": examples}, batch_size, 0)
        task._majority = self.task_.majority_label()
        return _figures(task.measure(p.model, "all"))


class Tagger(Estimator):
    """One tag per word: ``fit(sentences, tags)`` with sentences as lists of words, or
    as raw text (split into words by the ``tokenizer`` setting, default ``ud``), and
    ``tags`` one list per sentence."""

    task = "tag"

    def _words(self, sentences: Any, name: str, settings: TrainSettings) -> list[list[str]]:
        if isinstance(sentences, str) or not hasattr(sentences, "__iter__"):
            raise TypeError(
                f"{name}: expected a list of sentences, found {type(sentences).__name__}"
            )
        tokenizer = word_tokenizer(settings, "word")
        return sentence_words(sentences, lambda text: tokenize_words(text, tokenizer), name)

    def _sentences(self, x: Any, y: Any, name: str, settings: TrainSettings) -> list:
        words = self._words(x, name, settings)
        y_name = "y" if name == "x" else "validation_data[1]"
        if isinstance(y, str) or not hasattr(y, "__iter__"):
            raise TypeError(f"{y_name}: expected one list of tags per sentence")
        tags = [list(map(str, t)) if not isinstance(t, str) else t.split() for t in y]
        if len(tags) != len(words):
            raise ValueError(
                f"{y_name}: expected {len(words)} tag lists (one per sentence), found {len(tags)}"
            )
        for i, (w, t) in enumerate(zip(words, tags)):
            if len(w) != len(t):
                raise ValueError(
                    f"{y_name}[{i}]: expected {len(w)} tags (one per word of {w[:5]}...), "
                    f"found {len(t)}"
                )
        return list(zip(words, tags))

    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        sentences = self._sentences(x, y, "x", settings)
        if validation_data is None:
            parts = holdout(len(sentences), settings.seed, None, self.validation_split)
            split = {s: [sentences[i] for i in idx] for s, idx in parts.items()}
        else:
            vx, vy = _pair(validation_data)
            split = {"train": sentences, "valid": self._sentences(vx, vy, "validation_data[0]",
                                                                  settings)}  # fmt: skip
        return TagTask.from_memory(split, settings)

    def predict_proba(self, sentences: Any, batch_size: int = 64) -> Any:
        """Per-word tag probabilities: ``(L, K)`` for a sentence (columns in
        :attr:`labels` order), a list of them for a list of sentences
        (:meth:`kioku.api.Predictor.tag_proba`: ``kioku.load`` gives the same)."""
        return self._fitted().tag_proba(sentences, batch_size)

    @property
    def labels(self) -> list[str]:
        """The tag names, in the order of :meth:`predict_proba`'s columns."""
        return list(self._fitted().labels)

    def evaluate(self, x: Any, y: Any, batch_size: int = 64) -> dict[str, float]:
        """``{"accuracy", "loss", ...}`` over the words of ``x`` tagged ``y`` (a tag the
        training data never had counts as missed)."""
        p = self._fitted()
        sentences = self._sentences(x, y, "x", self.settings)
        table = FormTable(p.char_vocab)
        table.ids(self.task_.table.forms[: self.task_.train_forms])
        examples = TagTask.encode(p.vocab, p.labels, sentences, "y", table)
        task = TagTask(
            p.vocab, p.labels, {"train": examples, "all": examples}, batch_size, 0,
            table=table, train_forms=self.task_.train_forms,
        )  # fmt: skip
        task._majority = self.task_.majority_label()
        record = task.measure(p.model, "all")
        return _figures(record)


class LanguageModel(Estimator):
    """Next-token prediction on a text (``fit(text)``: a string, or a list of strings
    joined by line ends), at ``level`` ``"char"`` (default) or ``"word"``. Without
    ``validation_data`` the text's last ``validation_split`` (10 %; cut at a line end
    where there is one) validates. Not :class:`kioku.models.LanguageModel`, the model it trains."""

    task = "lm"
    defaults = {"epochs": 10}

    def _text(self, value: Any, name: str) -> str:
        if isinstance(value, str):
            return value
        return "\n".join(_texts(value, name))

    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        if y is not None:
            raise TypeError("y: a language model learns from the text alone; give fit(text)")
        text = self._text(x, "x")
        if validation_data is None:
            cut = int(len(text) * (1 - self.validation_split))
            cut = text.rfind("\n", 0, cut) + 1 or cut
            train, valid = text[:cut], text[cut:]
        else:
            train, valid = text, self._text(validation_data, "validation_data")
        corpus = Corpus("text in memory", train, valid, valid, settings.level or "char")
        return LanguageModelTask.from_corpus(corpus, settings, ("train", "valid"))

    def evaluate(self, x: Any, y: Any = None, batch_size: int = 64) -> dict[str, float]:
        """``{"loss", "ppl"[, "bpc"]}`` of the text ``x`` (a string or a list of strings),
        read as one stream, the state carried through."""
        p = self._fitted()
        ids = p.vocab.encode(self._text(x, "x"))
        if p.vocab.level == "word":
            ids = np.concatenate([[p.vocab.eos_id], ids]).astype(np.int64)
        if ids.size < 2:
            raise ValueError(f"x: expected at least 2 tokens, found {ids.size}")
        task = LanguageModelTask(p.vocab, {"train": ids, "all": ids}, 1, self.settings.bptt, 1)
        return _figures(task.measure(p.model, "all"))

    def sample(
        self, prefix: str = "", length: int = 200, temperature: float = 1.0, seed: int = 0
    ) -> str:
        """``length`` tokens continuing ``prefix`` (a word model starts after ``<eos>``),
        drawn at ``temperature`` with generator ``seed``; returns the text generated."""
        p = self._fitted()
        ids = p.vocab.encode(prefix) if prefix else np.zeros(0, np.int64)
        if p.vocab.level == "word" or ids.size == 0:
            ids = np.concatenate([[p.vocab.eos_id], ids]).astype(np.int64)
        out = p.model.sample(ids, length, temperature=temperature, rng=np.random.default_rng(seed))
        return p.vocab.decode(out)

    def predict(self, x: Any, batch_size: int = 64, **options: Any) -> TokenScores | list:
        """:class:`~kioku.api.TokenScores` (each token's bits, the perplexity) of a text
        or of a list of texts."""
        return super().predict(x, batch_size, **options)


def _features(x: Any) -> bool:
    """Whether ``x`` holds float sequences: an array ``(N, T, F)`` of numbers, or a list
    whose first item is a 2-D array."""
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "fiu" and x.ndim != 1
    return isinstance(x, (list, tuple)) and len(x) > 0 and getattr(x[0], "ndim", 0) == 2


def _pair(validation_data: Any) -> tuple[Any, Any]:
    if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
        raise TypeError(
            f"validation_data: expected a tuple (x, y), found {type(validation_data).__name__}"
        )
    return validation_data


def _figures(record: dict) -> dict[str, float]:
    """The task's figures, the headline first (Keras's order: the metric, then loss)."""
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in record.items()}
    first = {k: plain[k] for k in ("accuracy", "loss") if k in plain}
    rest = {k: v for k, v in plain.items() if k not in first and not isinstance(v, dict)}
    return {**first, **rest}
