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
    ``input_size``) -> LSTM (optionally bidirectional) -> pooling over each sequence's
    valid steps (``"last"``, ``"mean"`` or ``"max"``) -> linear -> ``logits (B, C)``.
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
    ) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"num_classes: expected >= 2, found {num_classes}")
        rng = as_rng(rng)
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
        )
        self.add_module(
            "classifier", Linear(self.encoded_size, num_classes, dtype=self.dtype, rng=rng)
        )
        if init_range is not None:
            self.init_uniform(init_range, rng)
        self._config = {
            "vocab_size": vocab_size,
            "embed_size": embed_size,
            "hidden_size": hidden_size,
            "num_classes": num_classes,
            "num_layers": num_layers,
            "bidirectional": bool(bidirectional),
            "pooling": pooling,
            "dropout": dropout,
            "input_size": input_size,
            "padding_idx": padding_idx,
            "dtype": self.dtype.name,
            "init_range": init_range,
        }

    def forward(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``inputs (T, B)`` or ``(T, B, I)``, ``lengths (B,)`` -> ``logits (B, C)``."""
        y = self.encode(inputs, lengths)
        return self.classifier(self.pool(y, lengths))

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """``dlogits (B, C)``; returns the gradient of float inputs (``None`` for ids)."""
        return self.encode_backward(self.pool.backward(self.classifier.backward(dlogits)))

    def loss(
        self, inputs: np.ndarray, labels: np.ndarray, lengths: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy against ``labels (B,)``, backward included; returns the
        loss and the logits."""
        logits = self.forward(inputs, lengths)
        loss, dlogits = softmax_cross_entropy(logits, labels)
        self.backward(dlogits)
        return loss, logits

    def predict(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Most likely class per sequence, ``(B,)``, computed in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self.forward(inputs, lengths).argmax(axis=-1)
        finally:
            self.train(was_training)
