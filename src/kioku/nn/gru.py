"""``GRU`` and ``GRUCell``: the gated recurrent unit, parameter for parameter
``torch.nn.GRU`` / ``torch.nn.GRUCell``."""

from __future__ import annotations

import numpy as np

from .. import functional, kernels
from .cell import RecurrentCell
from .gates import add_gate_grads
from .grad_mode import is_grad_enabled
from .recurrent import RecurrentStack


class GRU(RecurrentStack):
    """Multi-layer GRU, parameter for parameter ``torch.nn.GRU``.

    ``y, h_n = gru(x, h0=None, lengths=None)``: ``x (T, B, I)`` (``(B, T, I)`` with
    ``batch_first``, or unbatched ``(T, I)``), ``h0 (L*D, B, H)``, ``lengths (B,)``
    integers in 1..T (packed-sequence semantics). ``y (T, B, D*H)`` (concat;
    ``(T, B, H)`` for merge modes sum, mean, mul), ``h_n (L*D, B, H)``.
    ``dx, dh0 = gru.backward(dy, dh_n=None)`` adds parameter gradients into
    ``gru.grads``. Parameters ``weight_ih_l{k}[_reverse] (3H, in)``, ``weight_hh (3H, H)``,
    ``bias_ih``, ``bias_hh (3H,)``, rows in gate order r, z, n. ``reset_after=False``
    applies the reset gate before the recurrent product of the new state
    (``(r * h) W_hn``, Cho et al. 2014, Keras ``reset_after=False``, ONNX
    ``linear_before_reset=0``) instead of PyTorch's ``r * (h W_hn + b_hn)``.
    """

    gates = 3  # r, z, n

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        reset_after: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            batch_first,
            dropout,
            bidirectional,
            merge_mode,
            dtype,
            rng,
        )
        if not isinstance(reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after: expected a bool, found {type(reset_after).__name__}")
        self.bias = bool(bias)
        self.reset_after = bool(reset_after)
        self.add_direction_params(self.gate_param_shapes)

    def _biases(self, sfx: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not self.bias:
            return None, None
        return self.params[f"bias_ih{sfx}"], self.params[f"bias_hh{sfx}"]

    def forward_direction(
        self,
        x: np.ndarray,
        layer: int,
        direction: int,
        state: tuple[np.ndarray | None],
        lengths: np.ndarray | None,
    ) -> tuple[np.ndarray, tuple[np.ndarray], functional.GRUCache]:
        """One direction of one layer: ``x (T, B, I)``, ``state = (h0 (B, H) or None,)``;
        returns ``y (T, B, H)``, ``(h_n (B, H),)`` and the cache."""
        sfx = self.suffix(layer, direction)
        p = self.params
        y, h_n, cache = kernels.backend_for("gru").gru_forward(
            x,
            p[f"weight_ih{sfx}"],
            p[f"weight_hh{sfx}"],
            *self._biases(sfx),
            state[0],
            lengths,
            bool(direction),
            self.reset_after,
            self.keep_cache,
        )
        return y, (h_n,), cache

    def backward_direction(
        self,
        dy: np.ndarray,
        cache: functional.GRUCache,
        layer: int,
        direction: int,
        dstate: tuple[np.ndarray | None],
        need_dx: bool,
    ) -> tuple[np.ndarray | None, tuple[np.ndarray]]:
        """Backward of one direction: ``dy (T, B, H)``, ``dstate = (dh_n (B, H) or None,)``;
        adds the parameter gradients into ``self.grads`` and returns ``dx (T, B, I)`` (or
        ``None``) and ``(dh0 (B, H),)``; dL/dh_t goes to the backward hooks."""
        (trace,) = self.state_grad_buffers(*dy.shape[:2]) or (None,)
        grads = kernels.backend_for("gru").gru_backward(dy, cache, dstate[0], need_dx, trace)
        sfx = self.suffix(layer, direction)
        add_gate_grads(self, sfx, grads, grads.dbias_ih, grads.dbias_hh)
        return grads.dx, (grads.dh0,)

    def __call__(
        self, x: np.ndarray, h0: np.ndarray | None = None, lengths: object = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forward; see the class docstring for shapes."""
        y, (h_n,) = self.run(x, h0, lengths)
        return y, h_n

    forward = __call__

    def backward(
        self,
        dy: np.ndarray,
        dh_n: np.ndarray | None = None,
        need_dx: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Backward of the last forward: returns ``dx`` shaped like ``x`` and ``dh0``
        shaped like ``h0``. Backward hooks (:meth:`register_backward_hook`) receive
        ``(dL/dh_t (T, B, H),)``."""
        dx, (dh0,) = self.run_backward(dy, dh_n, need_dx)
        return dx, dh0


class GRUCell(RecurrentCell):
    """One GRU step: ``h' = cell(x, h=None)`` with ``x (B, I)`` or unbatched ``(I,)``,
    ``h (B, H)`` (zeros if ``None``); parameters ``weight_ih (3H, I)``,
    ``weight_hh (3H, H)``, ``bias_ih``, ``bias_hh (3H,)`` as ``torch.nn.GRUCell``.

    Each forward pushes its cache; ``dx, dh = cell.backward(dh')`` pops the latest, so a
    loop of forwards is undone by the same number of backwards in reverse.
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def __call__(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """One step; returns ``h'`` shaped like ``h`` (``(B, H)`` or ``(H,)``)."""
        batch, unbatched = self._batch(x)
        if h is not None:
            h = self._state("h", h, batch.shape[0], unbatched)
        p = self.params
        biases = (p["bias_ih"], p["bias_hh"]) if self.bias else (None, None)
        _, h_next, cache = functional.gru_forward(
            np.ascontiguousarray(batch[None]), p["weight_ih"], p["weight_hh"], *biases, h,
            reset_after=self.reset_after, keep_cache=is_grad_enabled(),
        )  # fmt: skip
        self._push(cache, unbatched)
        return h_next[0] if unbatched else h_next

    forward = __call__

    def backward(self, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undo the latest forward: ``dh`` shaped like its ``h'``. Returns ``dx`` and
        ``dh`` for the step's inputs."""
        cache, unbatched, B = self._latest()
        dh = self._state("dh", dh, B, unbatched)
        grads = functional.gru_backward(dh[None], cache)
        self._undo(grads, grads.dbias_ih, grads.dbias_hh)
        dx = grads.dx[0]
        return (dx[0], grads.dh0[0]) if unbatched else (dx, grads.dh0)
