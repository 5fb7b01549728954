"""Sequence classification: one label per sequence from a pooled LSTM output."""

from __future__ import annotations

import numpy as np

from ..nn.linear import Linear
from ..nn.loss import softmax_cross_entropy
from ..nn.module import as_rng
from .base import RecurrentEncoder
from .pooling import Pooling


class SequenceClassifier(RecurrentEncoder):
    """Token ids ``(T, B)`` (give ``vocab_size``) or features ``(T, B, I)`` (give
    ``input_size``) -> recurrent layer (optionally bidirectional) -> pooling over each
    sequence's valid steps (``"last"``, ``"mean"`` or ``"max"``) -> linear ->
    ``logits (B, C)``. The layer's ``cell`` is ``"lstm"``, ``"gru"`` or ``"slstm"``
    (with ``num_heads``).
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
    ) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"num_classes: expected >= 2, found {num_classes}")
        rng = as_rng(rng)
        self.pooling, self.num_classes = pooling, num_classes
        self.pool = Pooling(pooling, 2 if bidirectional else 1)
        self._build_encoder(
            vocab_size,
            input_size,
            embed_size,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            padding_idx,
            dtype,
            rng,
            cell=cell,
            num_heads=num_heads,
        )
        self.add_module(
            "classifier", Linear(self.encoded_size, num_classes, dtype=self.dtype, rng=rng)
        )
        self._initialise(init_range, rng)

    def forward(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``inputs (T, B)`` or ``(T, B, I)``, ``lengths (B,)`` -> ``logits (B, C)``."""
        y = self.encode(inputs, lengths)
        return self.classifier(self.pool(y, lengths))

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """``dlogits (B, C)``; returns the gradient of float inputs (``None`` for ids)."""
        return self.encode_backward(self.pool.backward(self.classifier.backward(dlogits)))

    def loss(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        lengths: np.ndarray | None = None,
        backward: bool = True,
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy against ``labels (B,)``, backward included unless
        ``backward=False``; returns the loss and the ``logits (B, C)``."""
        logits = self.forward(inputs, lengths)
        return self._loss_with_backward(softmax_cross_entropy(logits, labels), backward), logits

    def predict(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Most likely class per sequence, ``(B,)``, computed in eval mode."""
        with self.eval_mode():
            return self.forward(inputs, lengths).argmax(axis=-1)
