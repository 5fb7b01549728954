"""What the models share: JSON-able configs, uniform initialisation, and the
recurrent encoder (token ids through an embedding, or float features) -> LSTM.

Every model takes time-major input: token ids ``(T, B)`` or features ``(T, B, I)``,
with optional ``lengths (B,)`` for padded batches (packed-sequence semantics).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..nn.dropout import Dropout
from ..nn.embedding import Embedding, check_token_ids
from ..nn.lstm import LSTM
from ..nn.module import Module, check_dtype


class Model(Module):
    """A module whose constructor arguments round-trip through :meth:`config`."""

    def __init__(self) -> None:
        super().__init__()
        self._config: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (``rng`` excluded), JSON-able."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Model:
        """A fresh model built from :meth:`config`'s dict (parameters freshly initialised).

        Unknown keys are a ``TypeError`` naming them."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a dict, found {type(config).__name__}")
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "rng"}
        unknown = sorted(set(config) - accepted)
        if unknown:
            raise TypeError(f"config: unexpected keys {unknown} for {cls.__name__}")
        return cls(**config)

    def init_uniform(self, init_range: float, rng: np.random.Generator) -> None:
        """Every parameter (tied ones once) drawn from U(-init_range, init_range)."""
        if not init_range > 0:
            raise ValueError(f"init_range: expected a number > 0, found {init_range}")
        seen: set[int] = set()
        for _, param, _ in self.named_parameters():
            if id(param) not in seen:
                seen.add(id(param))
                param[...] = rng.uniform(-init_range, init_range, param.shape)


class RecurrentEncoder(Model):
    """Inputs -> (embedding) -> dropout -> LSTM -> dropout, for the classifier, tagger
    and forecaster. Children: ``embedding`` (token inputs only) and ``lstm``."""

    def _build_encoder(
        self,
        vocab_size: int | None,
        input_size: int | None,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        padding_idx: int | None,
        dtype: np.dtype | type,
        rng: np.random.Generator,
    ) -> None:
        if (vocab_size is None) == (input_size is None):
            raise ValueError(
                "vocab_size, input_size: expected exactly one (token ids or float features), "
                f"found vocab_size={vocab_size}, input_size={input_size}"
            )
        self.dtype = check_dtype(dtype)
        self.vocab_size = vocab_size
        if vocab_size is not None:
            self.add_module(
                "embedding", Embedding(vocab_size, embed_size, padding_idx, self.dtype, rng)
            )
            lstm_input = embed_size
        else:
            self.embedding = None
            lstm_input = input_size
        self.add_module("input_dropout", Dropout(dropout, rng=rng))
        self.add_module(
            "lstm",
            LSTM(
                lstm_input,
                hidden_size,
                num_layers,
                dropout=dropout,
                bidirectional=bidirectional,
                dtype=self.dtype,
                rng=rng,
            ),
        )
        self.add_module("output_dropout", Dropout(dropout, rng=rng))
        self.encoded_size = hidden_size * (2 if bidirectional else 1)

    def _check_inputs(self, inputs: np.ndarray, name: str = "inputs") -> np.ndarray:
        inputs = np.asarray(inputs)
        if self.embedding is not None:
            if inputs.ndim != 2:
                raise ValueError(
                    f"{name}: expected token ids of shape (T, B), found {inputs.shape}"
                )
            return check_token_ids(inputs, self.vocab_size, name)
        if inputs.ndim != 3:
            raise ValueError(f"{name}: expected features of shape (T, B, I), found {inputs.shape}")
        return inputs

    def encode(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``inputs (T, B)`` ids or ``(T, B, I)`` features -> ``y (T, B, D*H)`` (zero past
        each length)."""
        inputs = self._check_inputs(inputs)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        y, _ = self.lstm(self.input_dropout(x), None, lengths)
        return self.output_dropout(y)

    def encode_backward(self, dy: np.ndarray) -> np.ndarray | None:
        """``dy (T, B, D*H)`` -> gradient for float inputs (``None`` for token ids)."""
        dx, _ = self.lstm.backward(self.output_dropout.backward(dy), None, need_dx=True)
        dx = self.input_dropout.backward(dx)
        if self.embedding is not None:
            self.embedding.backward(dx)
            return None
        return dx
