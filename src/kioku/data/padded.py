"""Padded batches with lengths, for classification and tagging.

Sequences of different lengths are stacked time-major into ``(T, B)`` with ``T`` the
longest in the batch, padding with ``pad``; ``lengths (B,)`` tells the LSTM where each
one ends (packed-sequence semantics). The order of examples in an epoch is a
permutation drawn from ``(seed, epoch)``, so the position (epoch, next batch) is all a
checkpoint needs to resume on the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .position import EpochPosition


def pad_batch(sequences: Sequence[np.ndarray], pad: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences ``(L_b, *F)`` into ``(T, B, *F)`` (time-major, ``T = max L_b``)
    plus ``lengths (B,)`` int64. Ids give ``(T, B)``, feature vectors ``(T, B, F)``."""
    if not sequences:
        raise ValueError("sequences: expected at least one sequence, found none")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if lengths.min() < 1:
        raise ValueError(f"sequences: expected non-empty sequences, found length {lengths.min()}")
    first = np.asarray(sequences[0])
    shape = (int(lengths.max()), len(sequences), *first.shape[1:])
    out = np.full(shape, pad, dtype=first.dtype)
    for b, seq in enumerate(sequences):
        out[: len(seq), b] = seq
    return out, lengths


@dataclass
class Example:
    """One example: ``tokens (L,)`` ids and a label (an int, or ``(L,)`` ids for tagging);
    ``forms (L,)``, where given, the tokens' word-form ids
    (:class:`~kioku.data.chars.FormTable`)."""

    tokens: np.ndarray
    label: int | np.ndarray
    forms: np.ndarray | None = None


class PaddedBatcher(EpochPosition):
    """Batches ``(x (T, B), lengths (B,), y)`` where ``y`` is ``(B,)`` class ids or
    ``(T, B)`` per-token tags (padded with ``label_pad``); examples with ``forms`` add
    ``forms (T, B)`` (padded with 0).

    ``word_dropout (V,)``, where given, is each token id's probability of being read as
    ``unk`` in a batch (word dropout, Plank et al. 2016); the draws come from ``(seed,
    epoch, batch)``, so a resumed run sees the same ones. Only its forms keep the word.

    ``sort_window`` N > 0 (with ``shuffle``): the shuffled examples are taken N batches
    at a time and sorted by length within them, so that a batch holds sentences of
    similar lengths (less padding to compute); the batches are then shuffled.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pad: int = 0,
        label_pad: int = -1,
        word_dropout: np.ndarray | None = None,
        unk: int = 0,
        sort_window: int = 0,
    ) -> None:
        if not examples:
            raise ValueError("examples: expected at least one example, found none")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
        self.examples = list(examples)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pad = pad
        self.label_pad = label_pad
        self.word_dropout = None if word_dropout is None else np.asarray(word_dropout)
        self.unk = unk
        self.sort_window = int(sort_window)
        self.epoch = 0
        self.batch = 0

    def __len__(self) -> int:
        return -(-len(self.examples) // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The example order of ``epoch``: a permutation seeded by ``(seed, epoch)``."""
        n = len(self.examples)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n)
        if self.sort_window < 1:
            return order
        lengths = np.array([len(e.tokens) for e in self.examples])[order]
        window = self.sort_window * self.batch_size
        # stable sort of (window, length): each window's examples by length, windows kept
        order = order[np.lexsort((lengths, np.arange(n) // window))]
        # whole batches shuffled; a last, smaller one stays last so the slicing holds
        full = n - n % self.batch_size
        starts = rng.permutation(np.arange(0, full, self.batch_size))
        return np.concatenate([*(order[s : s + self.batch_size] for s in starts), order[full:]])

    def collate(self, indices: Sequence[int]) -> tuple[np.ndarray, ...]:
        """The batch of the examples at ``indices`` (no word dropout)."""
        chosen = [self.examples[i] for i in indices]
        x, lengths = pad_batch([e.tokens for e in chosen], self.pad)
        if isinstance(chosen[0].label, np.ndarray):
            y, _ = pad_batch([e.label for e in chosen], self.label_pad)
        else:
            y = np.array([e.label for e in chosen], dtype=np.int64)
        if chosen[0].forms is None:
            return x, lengths, y
        return x, lengths, y, pad_batch([e.forms for e in chosen], 0)[0]

    def drop_words(self, x: np.ndarray, epoch: int, batch: int) -> np.ndarray:
        """``x (T, B)`` with each id ``w`` replaced by ``unk`` with probability
        ``word_dropout[w]``, drawn from ``(seed, epoch, batch)``."""
        if self.word_dropout is None:
            return x
        draws = np.random.default_rng([self.seed, epoch, batch, 1]).random(x.shape)
        return np.where(draws < self.word_dropout[x], self.unk, x)

    def batch_source(self) -> Callable[[int], tuple[np.ndarray, ...]]:
        order, epoch = self.order(self.epoch), self.epoch

        def source(k: int) -> tuple[np.ndarray, ...]:
            batch = self.collate(order[k * self.batch_size : (k + 1) * self.batch_size])
            return (self.drop_words(batch[0], epoch, k), *batch[1:])

        return source
