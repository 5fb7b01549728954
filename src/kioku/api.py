"""Use what you trained: ``kioku.load(path)`` and ``.predict(...)``.

``load`` reads a run folder (its best checkpoint on validation) or a checkpoint folder
and returns a :class:`Predictor` that holds the model with everything its task needs
to read new input and answer in the data's own terms: the vocabulary, the label or tag
names, the forecast columns and the training split's scaling.

    >>> tagger = kioku.load("runs/ewt")
    >>> tagger.predict(["The cat sat .", "Dogs bark"])
    [['DET', 'NOUN', 'VERB', 'PUNCT'], ['NOUN', 'VERB']]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.chars import FormTable
from .data.padded import pad_batch
from .data.tokenize import sentence_words
from .data.vocab import Vocabulary
from .nn.module import Module
from .train.checkpoint import CheckpointError
from .train.restore import load_model

_KIND_OF_MODEL = {
    "LanguageModel": "lm",
    "SequenceClassifier": "classify",
    "SequenceTagger": "tag",
    "Forecaster": "forecast",
}


@dataclass
class TokenScores:
    """How surprised a language model is by a text: each scored token and its ``bits
    (N,)`` (``-log2 p`` given the tokens before it), and the text's perplexity."""

    tokens: list[str]
    bits: np.ndarray
    perplexity: float

    @property
    def bits_per_token(self) -> float:
        return float(self.bits.mean()) if self.bits.size else math.nan


class Predictor:
    """A trained model and what its task needs to read new input (see :func:`load`).

    ``kind`` is ``"lm"``, ``"classify"``, ``"tag"`` or ``"forecast"``; ``model`` the
    :class:`~kioku.nn.Module` (eval mode); ``vocab`` the :class:`Vocabulary` (``None``
    for forecasts); ``labels`` the label or tag names; ``columns``, ``mean``, ``std``,
    ``window`` and ``horizon`` a forecaster's; ``checkpoint`` the folder it came from.
    """

    def __init__(self, model: Module, state: dict, vocab: Vocabulary | None, path: Path):
        source = str(path / "checkpoint.json")
        task = state.get("task") if isinstance(state.get("task"), dict) else {}
        self.model, self.vocab, self.checkpoint = model, vocab, path
        self.step = state.get("step")
        self.kind = task.get("kind") or _KIND_OF_MODEL.get(type(model).__name__)
        if self.kind not in ("lm", "classify", "tag", "forecast", "regress"):
            raise CheckpointError(f"{source}: field 'task.kind': unknown task {self.kind!r}")
        self.labels: list[str] = list(task.get("labels") or [])
        chars = task.get("char_vocab")  # a tagger that reads characters
        self.char_vocab = None if chars is None else Vocabulary.from_dict(chars, source)
        self.columns: list[str] = list(task.get("columns") or [])
        # the columns a forecaster forecasts; the others are past covariates it reads
        self.targets: list[str] = list(task.get("targets") or self.columns)
        self.window = task.get("window")
        self.horizon = task.get("horizon")
        self.mean = np.asarray(task["mean"], np.float64) if "mean" in task else None
        self.std = np.asarray(task["std"], np.float64) if "std" in task else None
        # a regressor's targets' scaling (kioku.Regressor)
        self.y_mean = np.asarray(task["y_mean"], np.float64) if "y_mean" in task else None
        self.y_std = np.asarray(task["y_std"], np.float64) if "y_std" in task else None
        if self.kind in ("classify", "tag") and not self.labels:
            raise CheckpointError(f"{source}: field 'task.labels': missing")
        if self.kind == "forecast" and self.mean is None:
            raise CheckpointError(
                f"{source}: field 'task.mean': missing (a checkpoint older than saved "
                "scaling cannot forecast in the data's units)"
            )

    def __repr__(self) -> str:
        name = type(self.model).__name__
        return f"Predictor(kind={self.kind!r}, model={name}, checkpoint='{self.checkpoint}')"

    # -- one entry point ------------------------------------------------------------------
    def predict(self, inputs, batch_size: int = 64, horizon: int | None = None):
        """Predictions for raw input, in the task's own terms:

        - lm: a text (``str``) or a list of texts -> :class:`TokenScores` (or a list);
        - classify: a text or a list of texts -> a label (or a list of labels);
        - tag: a sentence (``str``, split by the run's tokenizer) -> a list of tags; a list of
          sentences (strings or lists of words) -> a list of lists;
        - forecast: a series ``(N, F)`` (or ``(N,)`` for one column) in the data's units,
          or a list of them -> the next ``horizon`` values ``(horizon, F)`` in those
          units (or a list). ``horizon`` beyond the model's feeds its forecasts back in.
        """
        _check_count(batch_size, "batch_size")
        if self.kind == "forecast":
            return self.forecast(inputs, horizon, batch_size)
        if self.kind == "regress":
            return self.regress(inputs, batch_size)
        if horizon is not None:
            raise ValueError(f"horizon: applies to forecasts, not to task {self.kind}")
        if self.kind == "lm":
            return self.score(inputs, batch_size)
        if self.kind == "classify":
            single = isinstance(inputs, str) or (
                isinstance(inputs, np.ndarray) and inputs.ndim == 2
            )
            probs = self.predict_proba([inputs] if single else inputs, batch_size)
            labels = [self.labels[i] for i in probs.argmax(axis=1)]
            return labels[0] if single else labels
        return self.tag(inputs, batch_size)

    # -- tasks ----------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64):
        """Class probabilities ``(B, C)`` of ``texts`` (columns in :attr:`labels` order);
        one text gives ``(1, C)``, no texts ``(0, C)``. A tagger's: :meth:`tag_proba`."""
        if self.kind == "tag":
            return self.tag_proba(texts, batch_size)
        self._need("classify")
        if self.vocab is None:  # a classifier of float sequences (T, F)
            return self._features_proba(texts, batch_size)
        if isinstance(texts, str):
            texts = [texts]
        ids = [self.vocab.encode(_text(t, "texts", i)) for i, t in enumerate(texts)]
        for i, seq in enumerate(ids):
            if seq.size == 0:
                raise ValueError(f"texts[{i}]: expected text with at least one token, found none")
        if not ids:  # no texts: no rows
            return np.zeros((0, len(self.labels)), np.float64)
        logits = self._batched(ids, batch_size, lambda x, n: self.model(x, n))
        return _softmax(np.concatenate(logits).astype(np.float64))

    def regress(self, sequences, batch_size: int = 64) -> np.ndarray:
        """A regressor's targets ``(N, K)`` in their units for float sequences ``(N, T,
        F)`` or a list of ``(T_i, F)``; ``(K,)`` for one sequence ``(T, F)``."""
        self._need("regress")
        single = isinstance(sequences, np.ndarray) and sequences.ndim == 2
        scaled = self._scaled_sequences(sequences[None] if single else sequences)
        if not scaled:
            return np.zeros((0, self.y_mean.size), np.float64)
        out = self._batched(scaled, batch_size, lambda x, n: self.model(x, n)[:, 0])
        values = np.concatenate(out).astype(np.float64) * self.y_std + self.y_mean
        return values[0] if single else values

    def _scaled_sequences(self, sequences) -> list[np.ndarray]:
        """Float sequences checked and standardised as the training data was."""
        from .train.feature_tasks import as_sequences

        items = as_sequences(sequences, "sequences")
        width = int(self.mean.size)
        for i, x in enumerate(items):
            if x.shape[1] != width:
                raise ValueError(f"sequences[{i}]: expected {width} features, found {x.shape[1]}")
        return [((x - self.mean) / self.std).astype(self.model.dtype) for x in items]

    def _features_proba(self, sequences, batch_size: int) -> np.ndarray:
        """Class probabilities ``(N, C)`` of float sequences: ``(N, T, F)``, a list of
        ``(T_i, F)``, or one ``(T, F)``; read in the training data's scaling."""
        if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
            sequences = sequences[None]
        scaled = self._scaled_sequences(sequences)
        if not scaled:
            return np.zeros((0, len(self.labels)), np.float64)
        logits = self._batched(scaled, batch_size, lambda x, n: self.model(x, n))
        return _softmax(np.concatenate(logits).astype(np.float64))

    def tag(self, sentences, batch_size: int = 64):
        """Tags of a sentence (a string, split into words by the run's tokenizer: ``eat.``
        -> ``eat`` ``.``; whitespace for runs older than it) -> a list of tags; of a list
        of sentences (strings or lists of words) -> a list of lists. Unknown words read as
        ``<unk>``."""
        self._need("tag")
        rows, single = self._tag_rows(sentences, batch_size, lambda z: z.argmax(axis=-1))
        out = [[self.labels[k] for k in row] for row in rows]
        return out[0] if single else out

    def tag_proba(self, sentences, batch_size: int = 64):
        """Each word's tag probabilities: ``(L, K)`` for a sentence (read as :meth:`tag`
        reads it; columns in :attr:`labels` order, rows summing to 1), a list of them for
        a list of sentences."""
        self._need("tag")
        rows, single = self._tag_rows(
            sentences, batch_size, lambda z: _softmax(z.astype(np.float64))
        )
        return rows[0] if single else rows

    def _tag_rows(self, sentences, batch_size: int, finish) -> tuple[list, bool]:
        """``finish(logits (T, B, K))`` of each sentence, cut to its words, and whether
        one sentence (a str) was given."""
        single = isinstance(sentences, str)
        items = [sentences] if single else list(sentences)
        words = sentence_words(items, self.vocab.words)  # the run's tokenizer: eat. -> eat .
        ids = [np.array([self.vocab.index.get(w, 0) for w in s], np.int64) for s in words]
        if getattr(self.model, "char_encoder", None) is not None:
            # word ids and form ids side by side, (L, 2): padded together, split in run
            table = FormTable(self.char_vocab)
            ids = [np.stack([i, table.ids(s)], axis=1) for i, s in zip(ids, words)]

        def run(x, lengths):
            chars = None
            if x.ndim == 3:
                x, chars = x[..., 0], table.char_batch(x[..., 1])
            return np.swapaxes(finish(self.model(x, lengths, chars)), 0, 1)  # (B, T, ...)

        out = []
        for batch, sentence_ids in zip(
            self._batched(ids, batch_size, run), _chunks(ids, batch_size)
        ):
            out.extend(row[: len(s)] for row, s in zip(batch, sentence_ids))
        return out, single

    def score(self, texts, batch_size: int = 64):
        """:class:`TokenScores` of a text or a list of texts. A word model reads each
        text as a new sentence (after ``<eos>``) and scores every word and each line's
        ``<eos>``; a character model scores every character after the first. These are
        the tokens ``kioku eval --data`` scores in a file, with the same state carried:
        both give the same bits per token."""
        self._need("lm")
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        streams = []
        for i, text in enumerate(items):
            ids = self.vocab.encode(_text(text, "texts", i))
            if self.vocab.level == "word":
                ids = np.concatenate([[self.vocab.eos_id], ids]).astype(np.int64)
            if ids.size < 2:
                raise ValueError(
                    f"texts[{i}]: expected at least 2 tokens to score, found {ids.size}"
                )
            streams.append(ids)

        def run(x, lengths):
            logits, _ = self.model(x)
            logp = _log_softmax(logits[:-1].astype(np.float64))
            picked = np.take_along_axis(logp, x[1:, :, None], axis=2)[..., 0]
            return (-picked / math.log(2)).T  # (B, T - 1)

        out = []
        for batch, chunk in zip(
            self._batched(streams, batch_size, run), _chunks(streams, batch_size)
        ):
            for row, ids in zip(batch, chunk):
                bits = row[: ids.size - 1]
                tokens = [self.vocab.tokens[i] for i in ids[1:]]
                out.append(TokenScores(tokens, bits, float(2 ** bits.mean())))
        return out[0] if single else out

    def forecast(self, series, horizon: int | None = None, batch_size: int = 64):
        """The next ``horizon`` (default: the model's) values ``(horizon, K)`` of the
        :attr:`targets` after each series ``(N, F)`` of the :attr:`columns` (targets and
        past covariates), in the data's units; the last ``window`` rows are read. Beyond
        the model's horizon the forecasts are fed back in, which a model with covariates
        cannot do (their future is unknown): refused."""
        self._need("forecast")
        horizon = self.horizon if horizon is None else _check_count(horizon, "horizon")
        picked = [self.columns.index(t) for t in self.targets]
        if horizon > self.horizon and len(picked) != len(self.columns):
            inputs = [c for c in self.columns if c not in self.targets]
            raise ValueError(
                f"horizon: expected at most the model's {self.horizon} steps, found {horizon} "
                f"(beyond it the past covariates {inputs} would be needed ahead)"
            )
        single = (isinstance(series, np.ndarray) and series.ndim < 3) or (
            isinstance(series, Sequence) and len(series) > 0 and np.isscalar(series[0])
        )
        items = [series] if single else list(series)
        width = len(self.columns)
        windows = []
        for i, values in enumerate(items):
            values = np.asarray(values, np.float64)
            if values.ndim == 1 and width == 1:
                values = values[:, None]
            if values.ndim != 2 or values.shape[1] != width or values.shape[0] < 1:
                raise ValueError(
                    f"series[{i}]: expected shape (N, {width}) for columns {self.columns}, "
                    f"found {values.shape}"
                )
            if not np.isfinite(values).all():
                raise ValueError(f"series[{i}]: expected finite numbers, found nan or inf")
            windows.append(
                ((values[-self.window :] - self.mean) / self.std).astype(self.model.dtype)
            )
        out = []
        for chunk in _chunks(windows, batch_size):
            x, lengths = pad_batch(chunk)
            steps = []
            with self.model.eval_mode():
                while True:
                    pred = self.model(x, lengths)  # (B, H, K)
                    steps.append(pred)
                    if sum(s.shape[1] for s in steps) >= horizon:
                        break
                    # feed the forecasts back in (every column a target), keeping the length
                    x, lengths = _roll(x, lengths, pred)
            scaled = np.concatenate(steps, axis=1)[:, :horizon]
            out.extend(scaled.astype(np.float64) * self.std[picked] + self.mean[picked])
        return out[0] if single else out

    # -- helpers --------------------------------------------------------------------------
    def _need(self, kind: str) -> None:
        if self.kind != kind:
            raise TypeError(f"this method needs a {kind} model, found a {self.kind} model")

    def _batched(self, sequences: list[np.ndarray], batch_size: int, run) -> list:
        """``run(x (T, B), lengths (B,))`` over padded batches of ``sequences``, in eval
        mode; batches keep the input order."""
        if not sequences:
            return []
        out = []
        with self.model.eval_mode():
            for chunk in _chunks(sequences, batch_size):
                out.append(run(*pad_batch(chunk)))
        return out


def load(path: str | os.PathLike, which: str = "best") -> Predictor:
    """The model of a run folder (``which="best"``: its best checkpoint on validation,
    else its latest) or of a checkpoint folder, ready to :meth:`~Predictor.predict`.
    Errors name the file and the field."""
    if which not in ("best", "latest"):
        raise ValueError(f"which: expected 'best' or 'latest', found {which!r}")
    model, state, vocab, directory = load_model(path, which)
    return Predictor(model, state, vocab, directory)


def _roll(x: np.ndarray, lengths: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``x (T, B, F)`` moved on by the ``pred (B, H, F)`` steps."""
    steps = np.transpose(pred, (1, 0, 2)).astype(x.dtype)
    rows = []
    for b, n in enumerate(lengths):
        rows.append(np.concatenate([x[:n, b], steps[:, b]])[-x.shape[0] :])
    return pad_batch(rows)


def _chunks(items: list, size: int):
    return [items[i : i + size] for i in range(0, len(items), size)]


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, found {value!r}")
    return int(value)


def _text(value: object, name: str, index: int) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}[{index}]: expected str, found {type(value).__name__}")
    return value


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


__all__ = ["Predictor", "TokenScores", "load"]
