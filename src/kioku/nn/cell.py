"""``LSTMCell``: one step of the LSTM, forward and backward, as ``torch.nn.LSTMCell``."""

from __future__ import annotations

import numpy as np

from .. import functional
from .checks import check_float_array, check_positive_int, check_shape
from .grad_mode import is_grad_enabled
from .module import Module, as_rng, check_dtype


class LSTMCell(Module):
    """One LSTM step: ``h', c' = cell(x, (h, c))`` with ``x (B, I)`` or unbatched ``(I,)``,
    ``h, c (B, H)``; parameters ``weight_ih (4H, I)``, ``weight_hh (4H, H)``,
    ``bias_ih``, ``bias_hh (4H,)``.

    Each forward pushes its cache; ``dx, (dh, dc) = cell.backward(dh', dc')`` pops the
    latest, so a loop of forwards is undone by the same number of backwards in reverse.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.dtype = check_dtype(dtype)
        rng = as_rng(rng)
        H = self.hidden_size
        bound = 1.0 / np.sqrt(H)
        shapes = {"weight_ih": (4 * H, self.input_size), "weight_hh": (4 * H, H)}
        if self.bias:
            shapes.update(bias_ih=(4 * H,), bias_hh=(4 * H,))
        for name, shape in shapes.items():
            self.add_param(name, rng.uniform(-bound, bound, shape).astype(self.dtype))
        self._stack: list[tuple[functional.LSTMCache, bool]] = []

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``)."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "bias": self.bias,
            "dtype": self.dtype.name,
        }

    def __call__(self, x, state=None):
        """One step; returns ``(h', c')`` shaped like the state (``(B, H)`` or ``(H,)``)."""
        x = check_float_array("x", x, self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x: expected shape (B, {self.input_size}) or ({self.input_size},), found {x.shape}"
            )
        unbatched = x.ndim == 1
        batch = x.reshape(1, -1) if unbatched else x
        B = batch.shape[0]
        h0 = c0 = None
        if state is not None:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"state: expected a tuple (h, c), found {type(state).__name__}")
            expected = (self.hidden_size,) if unbatched else (B, self.hidden_size)
            h0, c0 = (check_float_array(f"state[{n}]", s, self.dtype) for n, s in zip("hc", state))
            check_shape("state[h]", h0, expected)
            check_shape("state[c]", c0, expected)
            h0, c0 = h0.reshape(B, -1), c0.reshape(B, -1)
        p = self.params
        bias = p["bias_ih"] + p["bias_hh"] if self.bias else None
        _, h, c, cache = functional.lstm_forward(
            batch[None], p["weight_ih"], p["weight_hh"], bias, h0, c0,
            keep_cache=is_grad_enabled(),
        )  # fmt: skip
        if cache is not None:  # under no_grad() nothing is kept for a backward
            self._stack.append((cache, unbatched))
        return (h[0], c[0]) if unbatched else (h, c)

    forward = __call__

    def backward(self, dh, dc=None):
        """Undo the latest forward: ``dh``, ``dc`` shaped like its ``h'``, ``c'`` (``dc``
        may be ``None``). Returns ``dx`` and ``(dh, dc)`` for the step's inputs."""
        if not self._stack:
            raise RuntimeError(
                "backward: no forward left to undo (call the cell first, outside "
                "kioku.nn.no_grad(), whose forwards keep nothing)"
            )
        cache, unbatched = self._stack[-1]
        B = cache.x.shape[1]
        expected = (self.hidden_size,) if unbatched else (B, self.hidden_size)
        dh = check_float_array("dh", dh, self.dtype)
        check_shape("dh", dh, expected)
        if dc is not None:
            dc = check_float_array("dc", dc, self.dtype)
            check_shape("dc", dc, expected)
            dc = dc.reshape(B, -1)
        self._stack.pop()
        grads = functional.lstm_backward(dh.reshape(1, B, -1), cache, None, dc)
        self.grads["weight_ih"] += grads.dweight_ih
        self.grads["weight_hh"] += grads.dweight_hh
        if self.bias:
            self.grads["bias_ih"] += grads.dbias
            self.grads["bias_hh"] += grads.dbias
        dx = grads.dx[0]
        if unbatched:
            return dx[0], (grads.dh0[0], grads.dc0[0])
        return dx, (grads.dh0, grads.dc0)
