"""A word's spelling as a vector: a bidirectional LSTM over its characters (Ling et al.
2015, Lample et al. 2016, Plank et al. 2016).

The batch's unique word forms run together, as one padded batch of character sequences
with their lengths (packed-sequence semantics), so each distinct word is encoded once
however often the batch holds it. The forward LSTM's state after a word's last
character and the backward LSTM's after its first are joined, ``(U, 2 Hc)``, then
gathered to the tokens, ``(T, B, 2 Hc)``. The backward sums the tokens' gradients per
form (a scatter-add), then runs back through both LSTM directions and the embedding.
"""

from __future__ import annotations

import copy

import numpy as np

from .embedding import Embedding, check_token_ids
from .lstm import LSTM
from .module import Module, as_rng, check_dtype

LENGTH_BOUNDS = (4, 8, 16)
"""The forms of a batch run in groups by length (1-4, 5-8, 9-16 characters, longer), each
for as many steps as its longest word: most words are short, and one long word would
otherwise make every word of the batch take its number of steps."""


def length_groups(char_lengths: np.ndarray) -> list[np.ndarray]:
    """Indices of ``char_lengths (U,)`` per group of :data:`LENGTH_BOUNDS` (empty groups
    left out), each ascending."""
    group = np.searchsorted(LENGTH_BOUNDS, char_lengths)
    return [np.flatnonzero(group == g) for g in np.unique(group)]


class CharEncoder(Module):
    """Children ``embedding`` (``(num_chars, embed_size)``) and ``lstm`` (one layer,
    bidirectional, ``hidden_size`` per direction); output width ``2 * hidden_size``."""

    def __init__(
        self,
        num_chars: int,
        embed_size: int,
        hidden_size: int,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        rng = as_rng(rng)
        self.dtype = check_dtype(dtype)
        self.num_chars, self.embed_size, self.hidden_size = num_chars, embed_size, hidden_size
        self.add_module("embedding", Embedding(num_chars, embed_size, None, self.dtype, rng))
        self.add_module(
            "lstm", LSTM(embed_size, hidden_size, bidirectional=True, dtype=self.dtype, rng=rng)
        )
        self.output_size = 2 * int(hidden_size)
        self._run: tuple[np.ndarray, int] | None = None

    def __call__(
        self, chars: np.ndarray, char_lengths: np.ndarray, forms: np.ndarray
    ) -> np.ndarray:
        """``chars (U, Lc)`` char ids, ``char_lengths (U,)`` in ``1..Lc``, ``forms (T, B)``
        indices into ``U`` -> ``(T, B, 2 Hc)``: each token's form encoding."""
        chars = check_token_ids(chars, self.num_chars, "chars")
        if chars.ndim != 2 or chars.shape[0] < 1 or chars.shape[1] < 1:
            raise ValueError(f"chars: expected shape (U, Lc) with U, Lc >= 1, found {chars.shape}")
        U, Lc = chars.shape
        char_lengths = np.asarray(char_lengths)
        if char_lengths.shape != (U,) or not np.issubdtype(char_lengths.dtype, np.integer):
            raise ValueError(
                f"char_lengths: expected {U} integers (one per form), found "
                f"shape {char_lengths.shape} dtype {char_lengths.dtype}"
            )
        if char_lengths.min() < 1 or char_lengths.max() > Lc:
            raise ValueError(
                f"char_lengths: expected values in 1..{Lc}, found "
                f"{int(char_lengths.min())}..{int(char_lengths.max())}"
            )
        forms = check_token_ids(forms, U, "forms")
        x = self.embedding(np.ascontiguousarray(chars.T))  # (Lc, U, E), time-major
        encoded = np.empty((U, self.output_size), self.dtype)
        runs = []
        for index in length_groups(char_lengths):
            steps = int(char_lengths[index].max())
            layer = copy.copy(self.lstm)  # the same parameters and gradients, its own cache
            _, (h_n, _) = layer.run(x[:steps, index], None, char_lengths[index])
            # h_n[0]: forward state after each word's last char; h_n[1]: backward's after its first
            encoded[index] = np.concatenate([h_n[0], h_n[1]], axis=1)
            runs.append((layer, index, steps))
        self._run = (forms, U, Lc, runs)
        return encoded[forms]

    forward = __call__

    def backward(self, dout: np.ndarray) -> None:
        """``dout (T, B, 2 Hc)``: adds the gradients of the embedding and LSTM parameters."""
        if self._run is None:
            raise RuntimeError("CharEncoder.backward called before a forward")
        forms, U, Lc, runs = self._run
        width = self.output_size
        if dout.shape != forms.shape + (width,):
            raise ValueError(f"dout: expected shape {forms.shape + (width,)}, found {dout.shape}")
        dencoded = np.zeros((U, width), self.dtype)
        np.add.at(dencoded, forms.reshape(-1), dout.reshape(-1, width))  # a form's tokens sum
        H = int(self.hidden_size)
        dx = np.zeros((Lc, U, self.embed_size), self.dtype)
        for layer, index, steps in runs:
            dh_n = np.stack([dencoded[index, :H], dencoded[index, H:]])  # (2, u, Hc)
            dy = np.zeros((steps, len(index), width), self.dtype)  # only final states used
            dx[:steps, index] = layer.run_backward(dy, (dh_n, None), True)[0]
        self.embedding.backward(dx)
