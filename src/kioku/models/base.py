"""What the models share: configs read back from the constructor's signature, uniform
initialisation, evaluation mode as a ``with`` block, and the recurrent encoder (token
ids through an embedding, or float features) -> a recurrent layer of the chosen
``cell``: ``"lstm"`` (:class:`~kioku.nn.LSTM`), ``"gru"`` (:class:`~kioku.nn.GRU`) or
``"slstm"`` (:class:`~kioku.nn.SLSTM`, with ``num_heads``).

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
from ..nn.gru import GRU
from ..nn.lstm import LSTM
from ..nn.module import Module, check_dtype
from ..nn.recurrent import RecurrentStack
from ..nn.slstm import SLSTM

State = tuple[np.ndarray, ...]
"""A recurrent layer's stacked state, one ``(L*D, B, S)`` array per component: ``(h, c)``
for the LSTM, ``(h,)`` for the GRU, ``(h, c, n, m)`` for the sLSTM."""

CELLS = ("lstm", "gru", "slstm")
"""The ``cell`` a model's recurrent layer can be; the layer is the model's child of that
name (``model.lstm``, ``model.gru``, ``model.slstm``), so an LSTM model's parameters keep
the names they had before the other cells existed (``lstm.weight_ih_l0``, ...)."""


def check_cell(cell: object, num_heads: object, proj_size: object = 0) -> None:
    """``ValueError``/``TypeError`` naming the argument unless ``cell`` is one of
    :data:`CELLS`, ``num_heads`` is 1 or (for ``"slstm"``) a positive integer, and
    ``proj_size`` is 0 for any cell but ``"lstm"``."""
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {', '.join(CELLS)}, found {cell!r}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)):
        raise TypeError(f"num_heads: expected an integer, found {type(num_heads).__name__}")
    if cell != "slstm" and num_heads != 1:
        raise ValueError(f"num_heads: only the slstm cell has heads, found {num_heads} for {cell}")
    if cell != "lstm" and proj_size:
        raise ValueError(
            f"proj_size: only the lstm cell has a projection, found {proj_size} for {cell}"
        )


def recurrent_layer(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    dtype: np.dtype,
    rng: np.random.Generator,
    proj_size: int = 0,
    num_heads: int = 1,
) -> RecurrentStack:
    """A fresh stacked layer of ``cell`` (see :data:`CELLS`), time-major, dropout between
    its layers; it maps ``x (T, B, input_size)`` to ``y (T, B, D * (proj_size or
    hidden_size))``."""
    check_cell(cell, num_heads, proj_size)
    common = dict(dropout=dropout, bidirectional=bidirectional, dtype=dtype, rng=rng)
    if cell == "gru":
        return GRU(input_size, hidden_size, num_layers, **common)
    if cell == "slstm":
        return SLSTM(input_size, hidden_size, num_heads, num_layers, **common)
    return LSTM(input_size, hidden_size, num_layers, proj_size=proj_size, **common)


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
    """Inputs -> (embedding) -> dropout -> recurrent layer -> dropout, the trunk of every
    model. Children: ``embedding`` (token inputs only), ``input_dropout``, the recurrent
    layer named by its cell (``lstm``, ``gru`` or ``slstm``; :attr:`recurrent` whichever
    it is), ``output_dropout``; ``encoded_size`` is the width of its output."""

    @property
    def recurrent(self) -> RecurrentStack:
        """The model's recurrent layer (``LSTM``, ``GRU`` or ``SLSTM``, as ``cell`` says)."""
        return self._children[self.cell]

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
        cell: str = "lstm",
        num_heads: int = 1,
        extra_input: int = 0,
        input_dropout: float | None = None,
    ) -> None:
        """``extra_input``: width of features joined to the embedding (token ids only);
        ``input_dropout``: the dropout on the layer's input (``None``: ``dropout``)."""
        check_cell(cell, num_heads, proj_size)
        if extra_input and vocab_size is None:
            raise ValueError(f"extra_input: expected 0 for float features, found {extra_input}")
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
        self.cell, self.num_heads = cell, int(num_heads)
        if vocab_size is not None:
            self.add_module(
                "embedding", Embedding(vocab_size, embed_size, padding_idx, self.dtype, rng)
            )
            layer_input = embed_size + extra_input
        else:
            self.embedding = None
            layer_input = input_size
        self.extra_input = int(extra_input)
        p_input = dropout if input_dropout is None else input_dropout
        self.add_module("input_dropout", Dropout(p_input, variational_dropout, rng))
        layer = recurrent_layer(
            cell,
            layer_input,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            self.dtype,
            rng,
            proj_size=proj_size,
            num_heads=num_heads,
        )
        self.add_module(cell, layer)
        self.add_module("output_dropout", Dropout(dropout, variational_dropout, rng))
        self.encoded_size = (proj_size or hidden_size) * (2 if bidirectional else 1)

    def _unwrap(self, state: State | None) -> State | np.ndarray | None:
        """A model's state is a tuple for every cell; a one-component layer (the GRU) takes
        its ``h`` bare, and gives it back as ``(h,)``."""
        if state is None or len(self.recurrent.state_sizes) > 1:
            return state
        if not isinstance(state, (tuple, list)) or len(state) != 1:
            raise ValueError(
                f"state: expected a tuple (h,) for the {self.cell} cell, "
                f"found {type(state).__name__}"
            )
        return state[0]

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
        extra: np.ndarray | None = None,
    ) -> tuple[np.ndarray, State]:
        """``inputs (T, B)`` ids or ``(T, B, I)`` features, ``lengths (B,)``, the recurrent
        layer's initial ``state`` (see :data:`State`) -> ``y (T, B, D*P)`` (zero past
        each length) and the final state (for the LSTM ``(h (L*D, B, P), c (L*D, B,
        H))``); ``name`` is what errors call ``inputs``; ``extra (T, B, extra_input)``
        joins the embedding when the trunk was built with ``extra_input``."""
        inputs = self._check_inputs(inputs, name)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        if self.extra_input or extra is not None:
            expected = (*inputs.shape, self.extra_input)
            if extra is None or extra.shape != expected or not self.extra_input:
                found = None if extra is None else extra.shape
                raise ValueError(f"extra: expected features of shape {expected}, found {found}")
            x = np.concatenate([x, extra.astype(x.dtype, copy=False)], axis=-1)
        y, state = self.recurrent.run(self.input_dropout(x), self._unwrap(state), lengths)
        return self.output_dropout(y), state

    def _trunk_backward(
        self, dy: np.ndarray, dstate: State | None
    ) -> tuple[np.ndarray | None, State]:
        """``dy (T, B, D*P)`` (and the final state's gradient) -> the gradient of float
        inputs (for token ids: ``None``, or that of the ``extra`` features) and of the
        initial state; adds every parameter gradient."""
        dy = self.output_dropout.backward(dy)
        dx, dstate0 = self.recurrent.run_backward(dy, self._unwrap(dstate), True)
        dx = self.input_dropout.backward(dx)
        if self.embedding is not None:
            split = dx.shape[-1] - self.extra_input
            self.embedding.backward(dx[..., :split])
            return (dx[..., split:] if self.extra_input else None), dstate0
        return dx, dstate0


class RecurrentEncoder(RecurrentTrunk):
    """The trunk as an encoder of whole sequences from a zero state, for the
    classifier, tagger and forecaster."""

    def encode(
        self,
        inputs: np.ndarray,
        lengths: np.ndarray | None = None,
        extra: np.ndarray | None = None,
    ) -> np.ndarray:
        """``inputs (T, B)`` ids or ``(T, B, I)`` features, ``lengths (B,)`` (and ``extra
        (T, B, extra_input)`` features joined to the embedding) -> ``y (T, B, D*H)``
        (zero past each length)."""
        return self._trunk_forward(inputs, lengths, None, "inputs", extra)[0]

    def encode_backward(self, dy: np.ndarray) -> np.ndarray | None:
        """``dy (T, B, D*H)`` -> gradient for float inputs (for token ids: ``None``, or
        that of the ``extra`` features)."""
        return self._trunk_backward(dy, None)[0]
