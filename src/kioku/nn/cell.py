"""``LSTMCell``: one step of the LSTM, forward and backward, as ``torch.nn.LSTMCell``;
and :class:`RecurrentCell`, what it shares with the other one-step cells."""

from __future__ import annotations

import numpy as np

from .. import functional
from .checks import check_float_array, check_positive_int, check_shape
from .gates import add_gate_grads, gate_shapes
from .grad_mode import is_grad_enabled
from .module import Module, as_rng, check_dtype


class RecurrentCell(Module):
    """Base of the one-step cells (:class:`LSTMCell`, :class:`~kioku.nn.GRUCell`): sizes,
    dtype, PyTorch's parameters for ``gates`` gate blocks (``weight_ih (G*H, I)``,
    ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh (G*H,)``, all U(-1/sqrt(H), 1/sqrt(H))),
    batched or unbatched inputs, and the stack of forwards that backwards undo."""

    gates: int = 0

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
        bound = 1.0 / np.sqrt(self.hidden_size)
        for name, shape in gate_shapes(self.gates, self.hidden_size, input_size, bias).items():
            self.add_param(name, rng.uniform(-bound, bound, shape).astype(self.dtype))
        self._stack: list[tuple[object, bool]] = []

    def _batch(self, x: object) -> tuple[np.ndarray, bool]:
        """``x`` as ``(B, I)`` and whether it came unbatched (``(I,)``)."""
        x = check_float_array("x", x, self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x: expected shape (B, {self.input_size}) or ({self.input_size},), found {x.shape}"
            )
        unbatched = x.ndim == 1
        return (x.reshape(1, -1) if unbatched else x), unbatched

    def _state(self, name: str, value: object, batch: int, unbatched: bool) -> np.ndarray:
        """A state (or its gradient) ``value`` shaped as the step's ``(B, H)`` (``(H,)``
        unbatched), checked and returned as ``(B, H)``."""
        value = check_float_array(name, value, self.dtype)
        check_shape(name, value, (self.hidden_size,) if unbatched else (batch, self.hidden_size))
        return value.reshape(batch, -1)

    def _push(self, cache: object, unbatched: bool) -> None:
        if cache is not None:  # under no_grad() nothing is kept for a backward
            self._stack.append((cache, unbatched))

    def _latest(self) -> tuple[object, bool, int]:
        """The cache of the latest forward not yet undone, whether it was unbatched, and
        its batch size (left on the stack until the backward's checks have passed)."""
        if not self._stack:
            raise RuntimeError(
                "backward: no forward left to undo (call the cell first, outside "
                "kioku.nn.no_grad(), whose forwards keep nothing)"
            )
        cache, unbatched = self._stack[-1]
        return cache, unbatched, cache.x.shape[1]

    def _undo(self, grads, dbias_ih: np.ndarray | None, dbias_hh: np.ndarray | None) -> None:
        """Drop the latest forward and add its gradients into ``self.grads``."""
        self._stack.pop()
        add_gate_grads(self, "", grads, dbias_ih, dbias_hh)


class LSTMCell(RecurrentCell):
    """One LSTM step: ``h', c' = cell(x, (h, c))`` with ``x (B, I)`` or unbatched ``(I,)``,
    ``h, c (B, H)``; parameters ``weight_ih (4H, I)``, ``weight_hh (4H, H)``,
    ``bias_ih``, ``bias_hh (4H,)``.

    Each forward pushes its cache; ``dx, (dh, dc) = cell.backward(dh', dc')`` pops the
    latest, so a loop of forwards is undone by the same number of backwards in reverse.
    """

    gates = 4

    def __call__(self, x, state=None):
        """One step; returns ``(h', c')`` shaped like the state (``(B, H)`` or ``(H,)``)."""
        batch, unbatched = self._batch(x)
        B = batch.shape[0]
        h0 = c0 = None
        if state is not None:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"state: expected a tuple (h, c), found {type(state).__name__}")
            h0, c0 = (self._state(f"state[{n}]", s, B, unbatched) for n, s in zip("hc", state))
        p = self.params
        bias = p["bias_ih"] + p["bias_hh"] if self.bias else None
        _, h, c, cache = functional.lstm_forward(
            batch[None], p["weight_ih"], p["weight_hh"], bias, h0, c0,
            keep_cache=is_grad_enabled(),
        )  # fmt: skip
        self._push(cache, unbatched)
        return (h[0], c[0]) if unbatched else (h, c)

    forward = __call__

    def backward(self, dh, dc=None):
        """Undo the latest forward: ``dh``, ``dc`` shaped like its ``h'``, ``c'`` (``dc``
        may be ``None``). Returns ``dx`` and ``(dh, dc)`` for the step's inputs."""
        cache, unbatched, B = self._latest()
        dh = self._state("dh", dh, B, unbatched)
        if dc is not None:
            dc = self._state("dc", dc, B, unbatched)
        grads = functional.lstm_backward(dh[None], cache, None, dc)
        self._undo(grads, grads.dbias, grads.dbias)
        dx = grads.dx[0]
        if unbatched:
            return dx[0], (grads.dh0[0], grads.dc0[0])
        return dx, (grads.dh0, grads.dc0)
