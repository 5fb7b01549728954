"""Sequence tagging: one label per token (parts of speech, named entities, ...)."""

from __future__ import annotations

import numpy as np

from ..functional.sequence import length_mask
from ..nn.linear import Linear
from ..nn.loss import softmax_cross_entropy
from ..nn.module import as_rng
from .base import RecurrentEncoder


class SequenceTagger(RecurrentEncoder):
    """Token ids ``(T, B)`` (or features ``(T, B, I)`` with ``input_size``) -> LSTM,
    bidirectional by default so each tag sees both sides -> linear -> ``logits (T, B, K)``.
    Padding steps (past ``lengths``) do not count in the loss.
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
    ) -> None:
        super().__init__()
        if int(num_tags) < 1:
            raise ValueError(f"num_tags: expected >= 1, found {num_tags}")
        rng = as_rng(rng)
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
        self.add_module("tagger", Linear(self.encoded_size, num_tags, dtype=self.dtype, rng=rng))
        if init_range is not None:
            self.init_uniform(init_range, rng)
        self._config = {
            "vocab_size": vocab_size,
            "embed_size": embed_size,
            "hidden_size": hidden_size,
            "num_tags": num_tags,
            "num_layers": num_layers,
            "bidirectional": bool(bidirectional),
            "dropout": dropout,
            "input_size": input_size,
            "padding_idx": padding_idx,
            "dtype": self.dtype.name,
            "init_range": init_range,
        }

    def forward(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``inputs (T, B)`` or ``(T, B, I)``, ``lengths (B,)`` -> ``logits (T, B, K)``."""
        return self.tagger(self.encode(inputs, lengths))

    __call__ = forward

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """``dlogits (T, B, K)``; returns the gradient of float inputs (``None`` for ids)."""
        return self.encode_backward(self.tagger.backward(dlogits))

    def loss(
        self, inputs: np.ndarray, tags: np.ndarray, lengths: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over the valid tokens of ``tags (T, B)``, backward included;
        returns the loss and the logits."""
        logits = self.forward(inputs, lengths)
        T, B = logits.shape[:2]
        loss, dlogits = softmax_cross_entropy(logits, tags, mask=length_mask(lengths, T, B))
        self.backward(dlogits)
        return loss, logits

    def predict(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Most likely tag per token, ``(T, B)``, computed in eval mode (padding: -1)."""
        was_training = self.training
        self.eval()
        try:
            tags = self.forward(inputs, lengths).argmax(axis=-1)
        finally:
            self.train(was_training)
        mask = length_mask(lengths, *tags.shape)
        return tags if mask is None else np.where(mask, tags, -1)
