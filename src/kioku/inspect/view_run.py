"""Reading a text as the view's model reads it, and running the model on it under
:func:`~kioku.inspect.trace`, for :mod:`kioku.inspect.view`.

A text becomes *segments*, each run alone from a zero state:

- a tagger's text: one sentence per non-blank line, split into words by the run's own
  tokenizer (:func:`kioku.data.tokenize.sentence_words` with ``vocab.words``: ``eat.`` ->
  ``eat`` ``.``), exactly as training and ``kioku predict`` read sentences (each sentence
  encoded alone, no ``<eos>`` between them);
- any other model's text: one segment, the tokens of ``vocab.tokenize`` (a word language
  model's lines end in ``<eos>``, as in training).

A tagger that reads characters (``char_encoder``) gets each word's spelling too; only its
word-level layers are traced into the page (the character encoder is left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.chars import FormTable
from ..data.tokenize import sentence_words
from ..data.vocab import UNK, Vocabulary
from ..nn import Module
from .modules import check_word_token_model
from .trace import trace

CHAR_ENCODER = "char_encoder"


def is_tagger(model: Module) -> bool:
    """Whether ``model`` tags each token (a :class:`~kioku.models.SequenceTagger`)."""
    return getattr(model, "num_tags", None) is not None


def check_model(model: Module, char_vocab: Vocabulary | None) -> None:
    """``ValueError`` naming ``model`` (or ``char_vocab``) unless the view can run it: a
    token model, and for a tagger that reads characters, its character vocabulary."""
    if getattr(model, "char_encoder", None) is None:
        check_word_token_model(model)
        return
    if not is_tagger(model):
        raise ValueError(
            "model: expected a language model, a tagger or a word-only classifier, found a "
            "classifier that reads characters (train it with --char-embed 0 to view it)"
        )
    if char_vocab is None or char_vocab.level != "char":
        found = "None" if char_vocab is None else f"a {char_vocab.level}-level vocabulary"
        raise ValueError(
            "char_vocab: expected the run's character vocabulary (a tagger that reads "
            f"characters spells each word with it), found {found}"
        )


def read_segments(
    model: Module, vocab: Vocabulary, text: str, max_tokens: int, name: str = "text"
) -> list[list[str]]:
    """The segments of ``text`` (see the module docstring), cut to ``max_tokens`` tokens in
    all; ``ValueError`` naming ``name`` when there are none."""
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected str, found {type(text).__name__}")
    if is_tagger(model):
        lines = [line for line in text.splitlines() if line.strip()]
        segments, left = [], max_tokens
        for words in sentence_words(lines, vocab.words, name):
            if left <= 0:
                break
            segments.append(words[:left])
            left -= len(segments[-1])
    else:
        source = text[:max_tokens] if vocab.level == "char" else text
        segments = [vocab.tokenize(source)[:max_tokens]]  # the run's own tokenizer
    if not segments or not segments[0]:
        raise ValueError(f"{name}: expected some text, found none (empty or only whitespace)")
    return segments


@dataclass
class SegmentRun:
    """A model run on segments: ``tokens`` (all segments joined), ``starts`` (each
    segment's first index), ``unknown`` (indices read as ``<unk>``), per traced (module,
    layer, direction) its cell type, quantities and ``values[key][q]`` ``(T, H)`` float64,
    and the model's ``logits``: ``(T, K)`` per step, or ``(K,)`` for one prediction per
    text (a classifier)."""

    tokens: list[str]
    starts: list[int]
    unknown: list[int]
    keys: list[tuple[str, int, int]]
    cell_types: dict
    quantities: dict
    values: dict
    logits: np.ndarray


def _forward(model: Module, ids: np.ndarray, length: int, chars) -> np.ndarray:
    """Logits of one segment, ``ids (T,)`` of which the first ``length`` are its tokens
    (the rest padding, never read: packed semantics for a tagger or classifier, and a
    language model reads forward only): ``(length, K)``, or ``(K,)`` for a classifier."""
    x = ids[:, None]
    if is_tagger(model) or chars is not None or getattr(model, "pool", None) is not None:
        lengths = None if length == ids.size else np.array([length])
        out = model(x, lengths, chars)
    else:
        out = model(x)
    logits = np.asarray(out[0] if isinstance(out, tuple) else out, np.float64)
    return logits[:length, 0, :] if logits.ndim == 3 else logits[0]


def run_segments(
    model: Module,
    vocab: Vocabulary,
    segments: Sequence[Sequence[str]],
    char_vocab: Vocabulary | None = None,
    same_length: bool = False,
) -> SegmentRun:
    """Run ``model`` (eval mode: dropout off, as it predicts) on each of ``segments`` alone
    under :func:`~kioku.inspect.trace` and join the records along time.

    ``same_length`` (a comparison): every segment is padded to the longest one's length
    (with its lengths given: the padding is never read) and a tagger's words are spelt in
    one character batch of all segments' forms, so that two runs do exactly the same
    arithmetic on the same words: a matrix product over another number of rows may round
    differently in the last bit, which would hide the exact equality the comparison
    shows."""
    check_model(model, char_vocab)
    table = FormTable(char_vocab) if getattr(model, "char_encoder", None) is not None else None
    tokens = [t for segment in segments for t in segment]
    starts = list(np.cumsum([0] + [len(s) for s in segments[:-1]]).tolist())
    unknown = [t for t, token in enumerate(tokens) if token not in vocab.index]
    width = max(len(s) for s in segments) if same_length else 0
    unk = vocab.index[UNK]
    ids = [
        np.array([vocab.index.get(t, unk) for t in s] + [unk] * (width - len(s)), np.int64)
        for s in segments
    ]
    chars: list = [None] * len(segments)
    if table is not None:
        forms = [table.ids(list(s) + [s[0]] * (width - len(s))) for s in segments]
        if same_length:  # one batch of every form: each word spelt by the same arithmetic
            batch = table.char_batch(np.stack(forms, axis=1))
            chars = [batch._replace(forms=batch.forms[:, k : k + 1]) for k in range(len(forms))]
        else:
            chars = [table.char_batch(f[:, None]) for f in forms]
    parts: dict = {}
    cell_types, quantities, logits = {}, {}, []
    with model.eval_mode(), trace(model) as tr:
        for segment, segment_ids, segment_chars in zip(segments, ids, chars):
            n = len(segment)
            logits.append(_forward(model, segment_ids, n, segment_chars))
            for key in tr.keys():
                if key[0].split(".")[0] == CHAR_ENCODER:
                    continue  # the character encoder is left out of the page
                record = tr.get(key[1], key[2], key[0])
                cell_types[key] = record.cell_type
                quantities[key] = record.quantities
                parts.setdefault(key, []).append(
                    {q.short: record.get(q.short)[:n, 0, :] for q in record.quantities}
                )
            tr.records.clear()
    keys = list(parts)
    values = {
        key: {
            q: np.concatenate([p[q] for p in parts[key]]).astype(np.float64) for q in parts[key][0]
        }
        for key in keys
    }
    joined = np.concatenate(logits) if logits[0].ndim == 2 else logits[0]
    return SegmentRun(tokens, starts, unknown, keys, cell_types, quantities, values, joined)
