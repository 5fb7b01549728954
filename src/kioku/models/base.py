"""What the models share: configs read back from the constructor's signature, uniform
initialisation, evaluation mode as a ``with`` block, and the recurrent encoder (token
ids through an embedding, or float features) -> LSTM.

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

State = tuple[np.ndarray, np.ndarray]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class Model(Module):
    """A module whose constructor arguments round-trip through :meth:`config`: every
    argument but ``rng`` is kept as an attribute of the same name."""

    @classmethod
    def _config_names(cls) -> list[str]:
        names = inspect.signature(cls.__init__).parameters
        return [name for name in names if name not in ("self", "rng")]

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (``rng`` excluded) as this model holds them,
        JSON-able (``dtype`` by name)."""
        return {name: _jsonable(getattr(self, name)) for name in self._config_names()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Model:
        """A fresh model built from :meth:`config`'s dict (parameters freshly initialised).

        Unknown keys are a ``TypeError`` naming them."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a dict, found {type(config).__name__}")
        unknown = sorted(set(config) - set(cls._config_names()))
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

    def _loss_with_backward(self, loss_and_grad: tuple[float, np.ndarray], backward: bool) -> float:
        """The loss of a ``(loss, dout)`` pair, after :meth:`backward` of ``dout`` if
        ``backward``: how every model's ``loss`` ends."""
        loss, dout = loss_and_grad
        if backward:
            self.backward(dout)
        return loss

    def _initialise(self, init_range: float | None, rng: np.random.Generator) -> None:
        """The last step of a constructor: ``init_range`` kept, and applied if given."""
        self.init_range = init_range
        if init_range is not None:
            self.init_uniform(init_range, rng)


class RecurrentTrunk(Model):
    """Inputs -> (embedding) -> dropout -> LSTM -> dropout, the trunk of every model.
    Children: ``embedding`` (token inputs only), ``input_dropout``, ``lstm``,
    ``output_dropout``; ``encoded_size`` is the width of its output."""

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
        proj_size: int = 0,
        variational_dropout: bool = False,
    ) -> None:
        if (vocab_size is None) == (input_size is None):
            raise ValueError(
                "vocab_size, input_size: expected exactly one (token ids or float features), "
                f"found vocab_size={vocab_size}, input_size={input_size}"
            )
        self.dtype = check_dtype(dtype)
        self.vocab_size, self.input_size, self.embed_size = vocab_size, input_size, embed_size
        self.hidden_size, self.num_layers, self.proj_size = hidden_size, num_layers, proj_size
        self.bidirectional, self.dropout = bool(bidirectional), dropout
        self.padding_idx, self.variational_dropout = padding_idx, bool(variational_dropout)
        if vocab_size is not None:
            self.add_module(
                "embedding", Embedding(vocab_size, embed_size, padding_idx, self.dtype, rng)
            )
            lstm_input = embed_size
        else:
            self.embedding = None
            lstm_input = input_size
        self.add_module("input_dropout", Dropout(dropout, variational_dropout, rng))
        lstm = LSTM(
            lstm_input,
            hidden_size,
            num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            dtype=self.dtype,
            rng=rng,
        )
        self.add_module("lstm", lstm)
        self.add_module("output_dropout", Dropout(dropout, variational_dropout, rng))
        self.encoded_size = (proj_size or hidden_size) * (2 if bidirectional else 1)

    def _check_inputs(self, inputs: np.ndarray, name: str) -> np.ndarray:
        inputs = np.asarray(inputs)
        if self.embedding is not None:
            if inputs.ndim != 2:
                raise ValueError(
                    f"{name}: expected shape (T, B) of token ids, found {inputs.shape}"
                )
            return check_token_ids(inputs, self.vocab_size, name)
        if inputs.ndim != 3:
            raise ValueError(f"{name}: expected features of shape (T, B, I), found {inputs.shape}")
        return inputs

    def _trunk_forward(
        self,
        inputs: np.ndarray,
        lengths: np.ndarray | None,
        state: State | None,
        name: str,
    ) -> tuple[np.ndarray, State]:
        """``inputs (T, B)`` ids or ``(T, B, I)`` features, ``lengths (B,)``, the LSTM's
        initial ``state`` -> ``y (T, B, D*P)`` (zero past each length) and the final
        state ``(h (L*D, B, P), c (L*D, B, H))``; ``name`` is what errors call ``inputs``."""
        inputs = self._check_inputs(inputs, name)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        y, state = self.lstm(self.input_dropout(x), state, lengths)
        return self.output_dropout(y), state

    def _trunk_backward(
        self, dy: np.ndarray, dstate: State | None
    ) -> tuple[np.ndarray | None, State]:
        """``dy (T, B, D*P)`` (and the final state's gradient) -> the gradient of float
        inputs (``None`` for token ids) and of the initial state; adds every parameter
        gradient."""
        dx, dstate0 = self.lstm.backward(self.output_dropout.backward(dy), dstate, need_dx=True)
        dx = self.input_dropout.backward(dx)
        if self.embedding is not None:
            self.embedding.backward(dx)
            return None, dstate0
        return dx, dstate0


class RecurrentEncoder(RecurrentTrunk):
    """The trunk as an encoder of whole sequences from a zero state, for the
    classifier, tagger and forecaster."""

    def encode(self, inputs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``inputs (T, B)`` ids or ``(T, B, I)`` features, ``lengths (B,)`` ->
        ``y (T, B, D*H)`` (zero past each length)."""
        return self._trunk_forward(inputs, lengths, None, "inputs")[0]

    def encode_backward(self, dy: np.ndarray) -> np.ndarray | None:
        """``dy (T, B, D*H)`` -> gradient for float inputs (``None`` for token ids)."""
        return self._trunk_backward(dy, None)[0]
