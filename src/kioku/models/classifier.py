"""Sequence classification: one label per sequence from a pooled LSTM output."""

from __future__ import annotations

import numpy as np

from ..nn.loss import softmax_cross_entropy
from ..nn.module import as_rng
from .char_words import Chars, CharWordEncoder
from .pooling import Pooling


class SequenceClassifier(CharWordEncoder):
    """Token ids ``(T, B)`` (give ``vocab_size``) or features ``(T, B, I)`` (give
    ``input_size``) -> recurrent layer (optionally bidirectional) -> pooling over each
    sequence's valid steps (``"last"``, ``"mean"`` or ``"max"``) -> linear ->
    ``logits (B, C)``. The layer's ``cell`` is ``"lstm"``, ``"gru"`` or ``"slstm"``
    (with ``num_heads``). ``char_vocab_size`` (with ``char_embed_size``,
    ``char_hidden_size``) and ``embed_dropout`` as in
    :class:`~kioku.models.SequenceTagger`: each call then takes ``chars``.
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        embed_size: int = 64,
        hidden_size: int = 64,
        num_classes: int = 2,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
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
        if int(num_classes) < 2:
            raise ValueError(f"num_classes: expected >= 2, found {num_classes}")
        rng = as_rng(rng)
        self.pooling, self.num_classes = pooling, num_classes
        self.pool = Pooling(pooling, 2 if bidirectional else 1)
        self._build_char_words("classifier", num_classes, locals(), rng)

    def forward(
        self, inputs: np.ndarray, lengths: np.ndarray | None = None, chars: Chars = None
    ) -> np.ndarray:
        """``inputs (T, B)`` or ``(T, B, I)``, ``lengths (B,)``, ``chars`` (a char
        model's ``(chars (U, Lc), char_lengths (U,), forms (T, B))``) -> ``logits (B, C)``."""
        y = self.encode_words(inputs, lengths, chars)
        return self.classifier(self.pool(y, lengths))

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """``dlogits (B, C)``; returns the gradient of float inputs (``None`` for ids)."""
        dy = self.pool.backward(self.classifier.backward(dlogits))
        return self.encode_words_backward(dy)

    def loss(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        lengths: np.ndarray | None = None,
        backward: bool = True,
        chars: Chars = None,
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy against ``labels (B,)``, backward included unless
        ``backward=False``; returns the loss and the ``logits (B, C)``."""
        logits = self.forward(inputs, lengths, chars)
        return self._loss_with_backward(softmax_cross_entropy(logits, labels), backward), logits

    def predict(
        self, inputs: np.ndarray, lengths: np.ndarray | None = None, chars: Chars = None
    ) -> np.ndarray:
        """Most likely class per sequence, ``(B,)``, computed in eval mode."""
        return self._most_likely(inputs, lengths, chars)
