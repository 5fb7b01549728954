"""Sequence tagging: one label per token (parts of speech, named entities, ...)."""

from __future__ import annotations

import numpy as np

from ..functional.sequence import length_mask
from ..nn.loss import softmax_cross_entropy
from ..nn.module import as_rng
from .char_words import Chars, CharWordEncoder


class SequenceTagger(CharWordEncoder):
    """Token ids ``(T, B)`` (or features ``(T, B, I)`` with ``input_size``) -> recurrent
    layer (``cell`` ``"lstm"``, ``"gru"`` or ``"slstm"`` with ``num_heads``), bidirectional
    by default so each tag sees both sides -> linear -> ``logits (T, B, K)``.
    Padding steps (past ``lengths``) do not count in the loss.

    With ``char_vocab_size`` each token's embedding is joined by a character BiLSTM's
    encoding of its form (``char_embed_size``, ``char_hidden_size`` per direction; see
    :mod:`kioku.models.char_words`), and every call takes ``chars`` (a
    :class:`~kioku.data.chars.CharBatch`). ``embed_dropout`` is the dropout on the
    (joined) embeddings, ``None``: ``dropout``, which also acts between layers and
    before the output layer.
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        embed_size: int = 64,
        hidden_size: int = 64,
        num_tags: int = 2,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        input_size: int | None = None,
        padding_idx: int | None = None,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
        init_range: float | None = None,
        cell: str = "lstm",
        num_heads: int = 1,
        char_vocab_size: int | None = None,
        char_embed_size: int = 30,
        char_hidden_size: int = 50,
        embed_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if int(num_tags) < 1:
            raise ValueError(f"num_tags: expected >= 1, found {num_tags}")
        rng = as_rng(rng)
        self.num_tags = num_tags
        self._build_char_words("tagger", num_tags, locals(), rng)

    def forward(
        self, inputs: np.ndarray, lengths: np.ndarray | None = None, chars: Chars = None
    ) -> np.ndarray:
        """``inputs (T, B)`` or ``(T, B, I)``, ``lengths (B,)``, ``chars`` (a char
        model's ``(chars (U, Lc), char_lengths (U,), forms (T, B))``) ->
        ``logits (T, B, K)``."""
        return self.tagger(self.encode_words(inputs, lengths, chars))

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """``dlogits (T, B, K)``; returns the gradient of float inputs (``None`` for ids)."""
        return self.encode_words_backward(self.tagger.backward(dlogits))

    def loss(
        self,
        inputs: np.ndarray,
        tags: np.ndarray,
        lengths: np.ndarray | None = None,
        backward: bool = True,
        chars: Chars = None,
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over the tokens of ``tags (T, B)`` that count: those before
        each length whose tag is not negative (a tag unseen in training, or padding).
        Backward included unless ``backward=False``; returns the loss and the
        ``logits (T, B, K)``."""
        logits = self.forward(inputs, lengths, chars)
        tags = np.asarray(tags)
        mask = tag_mask(tags, lengths)
        loss = softmax_cross_entropy(logits, np.where(mask, tags, 0), mask=mask)
        return self._loss_with_backward(loss, backward), logits

    def predict(
        self, inputs: np.ndarray, lengths: np.ndarray | None = None, chars: Chars = None
    ) -> np.ndarray:
        """Most likely tag per token, ``(T, B)``, computed in eval mode (padding: -1)."""
        tags = self._most_likely(inputs, lengths, chars)
        mask = length_mask(lengths, *tags.shape)
        return tags if mask is None else np.where(mask, tags, -1)


def tag_mask(tags: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Which of ``tags (T, B)`` count in the loss and the accuracy, ``(T, B)`` bool:
    steps before each of ``lengths (B,)`` whose tag is not negative."""
    valid = tags >= 0
    steps = length_mask(lengths, *tags.shape)
    return valid if steps is None else valid & steps
