"""Words as characters, for models that read each word's spelling (a character encoder).

A :class:`FormTable` gives every distinct word form an id and keeps its character ids,
so a batch of sentences carries ``forms (T, B)``: form ids, one per token. For the
model, :meth:`FormTable.char_batch` turns them into the batch's *unique* forms as
``chars (U, Lc)`` with ``char_lengths (U,)`` and ``forms (T, B)`` indices into ``U``:
each distinct word is spelled once per batch, however often it occurs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from .vocab import Vocabulary

MAX_WORD_CHARS = 30
"""Characters kept of a word (its first ones): one odd token (a URL, a row of dashes)
must not widen every batch's character array."""


class CharBatch(NamedTuple):
    """A batch's words as characters: ``chars (U, Lc)`` char ids of its ``U`` unique
    forms (padding past each length: id 0), ``char_lengths (U,)`` in ``1..Lc``, and
    ``forms (T, B)`` each token's index into ``U`` (padding tokens: any valid index)."""

    chars: np.ndarray
    char_lengths: np.ndarray
    forms: np.ndarray


def build_char_vocab(words: Iterable[str]) -> Vocabulary:
    """Every character of ``words`` (the training split's), most frequent first; a
    character never seen there reads as ``<unk>`` (id 0)."""
    return Vocabulary.build(list(words), "char")


class FormTable:
    """Word forms and their character ids: ``chars (N, MAX_WORD_CHARS)`` int32 and
    ``lengths (N,)``; a form's id is its row. Forms are exact (case-sensitive) strings."""

    def __init__(self, char_vocab: Vocabulary | None, max_chars: int = MAX_WORD_CHARS) -> None:
        if char_vocab is not None and char_vocab.level != "char":
            raise ValueError(f"char_vocab: expected a char-level vocabulary, found {char_vocab}")
        if int(max_chars) < 1:
            raise ValueError(f"max_chars: expected >= 1, found {max_chars}")
        self.char_vocab, self.max_chars = char_vocab, int(max_chars)
        self.forms: list[str] = []
        self.index: dict[str, int] = {}
        self._rows: list[list[int]] = []
        self._chars: np.ndarray | None = None
        self._lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.forms)

    def ids(self, words: Sequence[str]) -> np.ndarray:
        """Form ids ``(L,)`` of ``words``, adding the forms not yet in the table."""
        out = np.empty(len(words), np.int64)
        for i, word in enumerate(words):
            form = self.index.get(word)
            if form is None:
                form = self.index[word] = len(self.forms)
                self.forms.append(word)
                if self.char_vocab is not None:
                    get, unk = self.char_vocab.index.get, self.char_vocab.unk_id
                    self._rows.append([get(c, unk) for c in word[: self.max_chars]] or [unk])
                self._chars = None
            out[i] = form
        return out

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.char_vocab is None:
            raise ValueError("char_vocab: this table was built without one, found None")
        if self._chars is None:
            lengths = np.array([len(r) for r in self._rows], np.int64)
            chars = np.zeros((len(self._rows), self.max_chars), np.int64)
            chars[np.arange(self.max_chars) < lengths[:, None]] = np.concatenate(
                self._rows or [[]]
            ).astype(np.int64)
            self._chars, self._lengths = chars, lengths
        return self._chars, self._lengths

    def char_batch(self, form_ids: np.ndarray) -> CharBatch:
        """``form_ids (T, B)`` (ids of this table) -> the :class:`CharBatch` of their unique
        forms, ``Lc`` the longest of them."""
        form_ids = np.asarray(form_ids)
        table, lengths = self._arrays()
        unique, inverse = np.unique(form_ids, return_inverse=True)
        char_lengths = lengths[unique]
        chars = table[unique, : int(char_lengths.max())]
        return CharBatch(chars, char_lengths, inverse.reshape(form_ids.shape))
