"""Words read by their spelling too: a :class:`~kioku.nn.char_encoder.CharEncoder` whose
encoding of each token's form joins its word embedding, for the tagger and classifier.

A model built with ``char_vocab_size`` takes ``chars``, a
:class:`~kioku.data.chars.CharBatch` ``(chars (U, Lc), char_lengths (U,), forms (T, B))``,
beside its token ids; one built without it is the word-only model it always was (same
parameters, same checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..nn.char_encoder import CharEncoder
from ..nn.linear import Linear
from .base import RecurrentEncoder

Chars = Sequence[np.ndarray] | None
"""What a model's ``chars`` argument takes: a :class:`~kioku.data.chars.CharBatch`, or
``None`` for a model without characters."""


def char_width(
    char_vocab_size: int | None, char_embed_size: int, char_hidden_size: int, vocab_size: object
) -> int:
    """Width of the character encoding a model joins to its embedding (0 without
    ``char_vocab_size``); ``ValueError`` naming the argument for sizes below 1 or chars
    without token ids."""
    if char_vocab_size is None or char_vocab_size == 0:
        return 0
    for name, value in (
        ("char_vocab_size", char_vocab_size),
        ("char_embed_size", char_embed_size),
        ("char_hidden_size", char_hidden_size),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, found {value!r}")
    if vocab_size is None:
        raise ValueError(
            "char_vocab_size: characters join word embeddings, expected vocab_size too, "
            "found input_size features"
        )
    return 2 * int(char_hidden_size)


class CharWordEncoder(RecurrentEncoder):
    """The recurrent encoder with an optional child ``char_encoder``: its output for
    ``chars`` joins the embedding before the input dropout (``embed_dropout``)."""

    char_encoder: CharEncoder | None

    def _keep_char_options(
        self,
        vocab_size: int | None,
        char_vocab_size: int | None,
        char_embed_size: int,
        char_hidden_size: int,
        embed_dropout: float | None,
    ) -> int:
        """Keep the constructor's char arguments (checked) as attributes; returns the
        width the encoder joins to the embedding (0: words only)."""
        extra = char_width(char_vocab_size, char_embed_size, char_hidden_size, vocab_size)
        self.char_vocab_size, self.char_embed_size = char_vocab_size, char_embed_size
        self.char_hidden_size, self.embed_dropout = char_hidden_size, embed_dropout
        return extra

    def _build_char_words(
        self, head: str, head_size: int, arguments: Mapping[str, Any], rng: np.random.Generator
    ) -> None:
        """The tagger's and classifier's constructor after their own checks: the encoder
        (characters joined when asked for), a linear child ``head`` of ``head_size``
        outputs, the character encoder, then ``init_range``. ``arguments``: the
        constructor's (its ``locals()``), read by the names the two share."""
        a = arguments
        extra = self._keep_char_options(
            a["vocab_size"], a["char_vocab_size"], a["char_embed_size"], a["char_hidden_size"],
            a["embed_dropout"],
        )  # fmt: skip
        self._build_encoder(
            a["vocab_size"], a["input_size"], a["embed_size"], a["hidden_size"], a["num_layers"],
            a["bidirectional"], a["dropout"], a["padding_idx"], a["dtype"], rng, cell=a["cell"],
            num_heads=a["num_heads"], extra_input=extra, input_dropout=a["embed_dropout"],
        )  # fmt: skip
        self.add_module(head, Linear(self.encoded_size, head_size, dtype=self.dtype, rng=rng))
        self._add_char_encoder(rng)
        self._initialise(a["init_range"], rng)

    def _most_likely(self, inputs: np.ndarray, lengths: np.ndarray | None, chars: Chars):
        """The argmax of the last axis of the forward's output, computed in eval mode."""
        with self.eval_mode():
            return self.forward(inputs, lengths, chars).argmax(axis=-1)

    def _add_char_encoder(self, rng: np.random.Generator) -> None:
        """The ``char_encoder`` child when the model reads characters (built after the
        other children, so that a word-only model draws its parameters as before)."""
        if not self.char_vocab_size:
            self.char_encoder = None
            return
        encoder = CharEncoder(
            self.char_vocab_size, self.char_embed_size, self.char_hidden_size, self.dtype, rng
        )
        self.add_module("char_encoder", encoder)

    def encode_words(
        self,
        inputs: np.ndarray,
        lengths: np.ndarray | None,
        chars: Chars,
    ) -> np.ndarray:
        """``inputs (T, B)`` (or features), ``lengths (B,)``, ``chars`` (a char model's
        :class:`~kioku.data.chars.CharBatch`, else ``None``) -> ``y (T, B, D*H)``."""
        if self.char_encoder is None:
            if chars is not None:
                raise ValueError("chars: expected None for a model without characters, found chars")
            return self.encode(inputs, lengths)
        if chars is None or len(chars) != 3:
            raise ValueError(
                "chars: expected (chars (U, Lc), char_lengths (U,), forms (T, B)) for a model "
                f"with characters, found {type(chars).__name__}"
            )
        features = self.char_encoder(*chars)
        return self.encode(inputs, lengths, features)

    def encode_words_backward(self, dy: np.ndarray) -> np.ndarray | None:
        """``dy (T, B, D*H)`` -> gradient of float inputs (``None`` for token ids), through
        the character encoder too."""
        dx = self.encode_backward(dy)
        if self.char_encoder is None:
            return dx
        self.char_encoder.backward(dx)
        return None
