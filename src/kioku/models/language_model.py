"""The language model: embedding -> dropout -> LSTM (or GRU, sLSTM) stack -> dropout ->
linear.

Zaremba et al. (2014) in NumPy: ``init_range`` draws every parameter from
U(-r, r) (their 0.1), ``tie_weights`` shares the embedding with the output layer
(Press & Wolf 2017, needs ``proj_size or hidden_size == embed_size``), ``dropout`` acts
on the embedding output, between LSTM layers and before the output layer.
"""

from __future__ import annotations

import numpy as np

from ..nn.embedding import check_token_ids
from ..nn.linear import Linear
from ..nn.loss import softmax_cross_entropy
from ..nn.module import as_rng
from .base import RecurrentTrunk, State


class LanguageModel(RecurrentTrunk):
    """Next-token logits for time-major token ids.

    ``logits (T, B, V), state = model(tokens (T, B), state=None)`` where ``state`` is the
    recurrent layer's, ``(h (L, B, P), c (L, B, H))`` for the LSTM (``(h,)`` for
    ``cell="gru"``, ``(h, c, n, m)`` for ``cell="slstm"``; carry it across batches for
    truncated BPTT); ``model.backward(dlogits (T, B, V))`` adds every gradient.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int = 200,
        hidden_size: int = 200,
        num_layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = False,
        proj_size: int = 0,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
        init_range: float | None = None,
        variational_dropout: bool = False,
        cell: str = "lstm",
        num_heads: int = 1,
    ) -> None:
        super().__init__()
        rng = as_rng(rng)
        output_size = proj_size or hidden_size
        if tie_weights and output_size != embed_size:
            raise ValueError(
                f"tie_weights: needs embed_size == {'proj_size' if proj_size else 'hidden_size'}, "
                f"found embed_size {embed_size} and {output_size}"
            )
        self.tie_weights = bool(tie_weights)
        # token ids, one direction, every id a word (no padding)
        self._build_encoder(
            vocab_size=vocab_size, input_size=None, embed_size=embed_size,
            hidden_size=hidden_size, num_layers=num_layers, bidirectional=False, dropout=dropout,
            padding_idx=None, dtype=dtype, rng=rng, proj_size=proj_size,
            variational_dropout=variational_dropout, cell=cell, num_heads=num_heads,
        )  # fmt: skip
        tied = self.embedding if tie_weights else None
        self.add_module(
            "decoder", Linear(output_size, vocab_size, dtype=self.dtype, rng=rng, tied_to=tied)
        )
        self._initialise(init_range, rng)

    def init_state(self, batch_size: int) -> State:
        """Zero state, one ``(L, B, S)`` array per component of the cell's state: ``(h (L,
        B, P), c (L, B, H))`` for the LSTM, ``(h,)`` for the GRU, ``(h, c, n, m)`` (each
        ``(L, B, H)``) for the sLSTM."""
        layer = self.recurrent
        return tuple(
            np.zeros((layer.num_layers, batch_size, size), self.dtype) for size in layer.state_sizes
        )

    def forward(self, tokens: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """``tokens (T, B)`` ints in ``0..V-1`` -> ``logits (T, B, V)`` and the final state."""
        y, state = self._trunk_forward(tokens, None, state, "tokens")
        return self.decoder(y), state

    __call__ = forward

    def backward(self, dlogits: np.ndarray, dstate: State | None = None) -> State:
        """Backward of the last forward: ``dlogits (T, B, V)`` (and optionally the final
        state's gradient). Adds all parameter gradients; returns the initial state's."""
        return self._trunk_backward(self.decoder.backward(dlogits), dstate)[1]

    def loss(
        self,
        tokens: np.ndarray,
        targets: np.ndarray,
        state: State | None = None,
        mask: np.ndarray | None = None,
        backward: bool = True,
    ) -> tuple[float, State]:
        """Mean cross-entropy of ``targets (T, B)`` after ``tokens (T, B)`` (over the
        steps where ``mask (T, B)`` is true, if given); runs the backward too unless
        ``backward=False``. Returns the loss and the final state."""
        logits, state = self.forward(tokens, state)
        loss = softmax_cross_entropy(logits, targets, mask=mask)
        return self._loss_with_backward(loss, backward), state

    def sample(
        self,
        prefix_ids: np.ndarray,
        n: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Continue ``prefix_ids (T0,)`` (at least one id) by ``n`` ids, drawn from
        ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely
        (``temperature=0``: the most likely id). Runs in eval mode; returns ``(n,)`` int64."""
        prefix = np.asarray(prefix_ids)
        if prefix.ndim != 1 or prefix.size == 0:
            raise ValueError(
                f"prefix_ids: expected a non-empty (T0,) array, found shape {prefix.shape}"
            )
        check_token_ids(prefix, self.vocab_size, "prefix_ids")
        if not temperature >= 0:
            raise ValueError(f"temperature: expected a number >= 0, found {temperature}")
        if top_k is not None and not 1 <= top_k:
            raise ValueError(f"top_k: expected None or an integer >= 1, found {top_k}")
        rng = as_rng(rng)
        out = np.empty(int(n), np.int64)
        with self.eval_mode():
            logits, state = self.forward(prefix[:, None])
            last = logits[-1, 0]
            for i in range(int(n)):
                out[i] = draw(last, temperature, top_k, rng)
                logits, state = self.forward(out[i : i + 1, None], state)
                last = logits[0, 0]
        return out


def draw(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> int:
    """One id from ``logits (V,)``: argmax at temperature 0, else a draw from the
    tempered softmax over the ``top_k`` largest logits (all if ``None``)."""
    logits = logits.astype(np.float64)
    if top_k is not None and top_k < logits.size:
        kth = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits >= kth, logits, -np.inf)
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = (logits - logits.max()) / temperature
    cumulative = np.cumsum(np.exp(scaled))
    return int(
        min(
            np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"),
            logits.size - 1,
        )
    )
