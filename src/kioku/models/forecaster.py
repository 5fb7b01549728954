"""Forecasting: the next ``horizon`` values of a (multivariate) series in one shot."""

from __future__ import annotations

import numpy as np

from ..nn.checks import check_positive_int
from ..nn.linear import Linear
from ..nn.loss import mse
from ..nn.module import as_rng
from .base import RecurrentEncoder
from .pooling import Pooling


class Forecaster(RecurrentEncoder):
    """A window ``x (T, B, I)`` -> recurrent layer (``cell`` ``"lstm"``, ``"gru"`` or
    ``"slstm"`` with ``num_heads``) -> the last valid step's output -> linear ->
    ``predictions (B, horizon, O)``, the next ``horizon`` steps of ``O`` series
    (``output_size``, default ``input_size``). Direct multi-step regression.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        horizon: int = 1,
        output_size: int | None = None,
        dropout: float = 0.0,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
        init_range: float | None = None,
        cell: str = "lstm",
        num_heads: int = 1,
    ) -> None:
        super().__init__()
        self.horizon = check_positive_int("horizon", horizon)
        rng = as_rng(rng)
        self.output_size = int(output_size or input_size)
        # float features, one direction, no embedding
        self._build_encoder(
            vocab_size=None, input_size=input_size, embed_size=0, hidden_size=hidden_size,
            num_layers=num_layers, bidirectional=False, dropout=dropout, padding_idx=None,
            dtype=dtype, rng=rng, cell=cell, num_heads=num_heads,
        )  # fmt: skip
        self.pool = Pooling("last")
        self.add_module(
            "head",
            Linear(hidden_size, self.horizon * self.output_size, dtype=self.dtype, rng=rng),
        )
        self._initialise(init_range, rng)

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``x (T, B, I)``, ``lengths (B,)`` -> ``predictions (B, horizon, O)``."""
        out = self.head(self.pool(self.encode(x, lengths), lengths))
        return out.reshape(out.shape[0], self.horizon, self.output_size)

    __call__ = forward

    def backward(self, dpred: np.ndarray) -> np.ndarray:
        """``dpred (B, horizon, O)`` -> ``dx (T, B, I)``; adds the parameter gradients."""
        dout = dpred.reshape(dpred.shape[0], self.horizon * self.output_size)
        return self.encode_backward(self.pool.backward(self.head.backward(dout)))

    def loss(
        self,
        x: np.ndarray,
        target: np.ndarray,
        lengths: np.ndarray | None = None,
        backward: bool = True,
    ) -> tuple[float, np.ndarray]:
        """Mean squared error against ``target (B, horizon, O)``, backward included unless
        ``backward=False``; returns the loss and the ``predictions (B, horizon, O)``."""
        pred = self.forward(x, lengths)
        return self._loss_with_backward(mse(pred, target), backward), pred
