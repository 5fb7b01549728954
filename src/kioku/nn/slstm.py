"""``SLSTM``: stacked, optionally bidirectional sLSTM layers (xLSTM, Beck et al. 2024)."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..functional.slstm import FORGET_GATES
from .checks import check_positive_int
from .recurrent import RecurrentStack


class SLSTM(RecurrentStack):
    """Multi-layer sLSTM: exponential input gate, sigmoid or exponential forget gate,
    normaliser and log-space stabiliser states, recurrence block-diagonal over heads.

    ``y, (h_n, c_n, n_n, m_n) = slstm(x, state=None, lengths=None)``: ``x (T, B, I)``
    (``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``), ``state = (h0, c0, n0,
    m0)``, each ``(L*D, B, H)`` or ``None`` (zeros), ``lengths (B,)`` integers in 1..T;
    ``y (T, B, D*H)`` (concat; ``(T, B, H)`` for merge modes sum, mean, mul), each final
    state ``(L*D, B, H)``; ``D = 2`` if bidirectional. ``dx, (dh0, dc0, dn0, dm0) =
    slstm.backward(dy, dstate=None)`` adds parameter gradients into ``slstm.grads``.

    Parameters per layer ``k`` (suffix ``_l{k}``, ``_l{k}_reverse``): ``weight_ih (4H, I)``,
    rows in gate order i, f, z, o, each gate's rows in (head, unit) order;
    ``recurrent_kernel (K, D_h, 4, D_h)`` and ``bias (K, 4, D_h)`` (if ``bias``), in the
    layout of the ``xlstm`` package's ``sLSTMCell.recurrent_kernel`` and ``.bias``
    (``K = num_heads``, ``D_h = H / K``). The math is :mod:`kioku.functional.slstm`.
    Initialisation follows ``xlstm``'s ``"standard"`` weights (uniform in
    ``±1/sqrt(H)``) and its ``"small_init"`` bias: zero, but the forget gate's bias
    spaced linearly from 3 to 6 over each head's units, so memory is long at the start.
    """

    state_names = ("h", "c", "n", "m")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_heads: int = 1,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        forget_gate: str = "sigmoid",
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
        self.num_heads = check_positive_int("num_heads", num_heads)
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads: expected a divisor of hidden_size {self.hidden_size}, "
                f"found {self.num_heads}"
            )
        if forget_gate not in FORGET_GATES:
            raise ValueError(
                f"forget_gate: expected one of {', '.join(FORGET_GATES)}, found {forget_gate!r}"
            )
        self.forget_gate = forget_gate
        self.bias = bool(bias)
        self.add_direction_params(self._shapes, self._small_init_bias)

    def _shapes(self, layer: int) -> dict[str, tuple[int, ...]]:
        """The parameters of one direction of ``layer``, in ``xlstm``'s layout."""
        H, K = self.hidden_size, self.num_heads
        head = H // K
        shapes = {
            "weight_ih": (4 * H, self.layer_input_size(layer)),
            "recurrent_kernel": (K, head, 4, head),
        }
        if self.bias:
            shapes["bias"] = (K, 4, head)
        return shapes

    @staticmethod
    def _small_init_bias(name: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """``xlstm``'s ``"small_init"`` bias (nothing drawn): zero but the forget gate's,
        spaced from 3 to 6 over each head's units; ``None`` for the drawn weights."""
        if name != "bias":
            return None
        value = np.zeros(shape)
        value[:, 1] = np.linspace(3.0, 6.0, shape[2])
        return value

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * 4

    def step_flops(self, batch: int) -> float:
        """``8 B H D_h``: the four gates' recurrence, block-diagonal over heads."""
        return 8.0 * batch * self.hidden_size * (self.hidden_size // self.num_heads)

    def forward_direction(self, x, layer, direction, state, lengths):
        sfx = self.suffix(layer, direction)
        p = self.params
        bias = None
        if self.bias:  # (K, 4, D_h) -> the (gate, head, unit) rows of weight_ih
            bias = p[f"bias{sfx}"].transpose(1, 0, 2).reshape(-1)
        y, final, cache = kernels.backend_for("slstm").slstm_forward(
            x,
            p[f"weight_ih{sfx}"],
            p[f"recurrent_kernel{sfx}"],
            bias,
            state,
            lengths,
            bool(direction),
            self.forget_gate,
            self.keep_cache,
        )
        return y, final, cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        traces = self.state_grad_buffers(*dy.shape[:2])  # for the backward hooks
        grads = kernels.backend_for("slstm").slstm_backward(dy, cache, dstate, need_dx, traces)
        sfx = self.suffix(layer, direction)
        g = self.grads
        g[f"weight_ih{sfx}"] += grads.dweight_ih
        g[f"recurrent_kernel{sfx}"] += grads.drecurrent_kernel
        if self.bias:
            K, head = self.num_heads, self.hidden_size // self.num_heads
            g[f"bias{sfx}"] += grads.dbias.reshape(4, K, head).transpose(1, 0, 2)
        return grads.dx, grads.dstate0

    def __call__(
        self, x: np.ndarray, state: tuple | None = None, lengths: np.ndarray | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Forward; see the class docstring for shapes."""
        return self.run(x, state, lengths)

    forward = __call__

    def backward(
        self, dy: np.ndarray, dstate: tuple | None = None, need_dx: bool = True
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
        """Backward of the last forward: ``dy`` shaped like ``y``; ``dstate = (dh_n, dc_n,
        dn_n, dm_n)`` (any may be ``None``). Returns ``dx`` shaped like ``x`` and
        ``(dh0, dc0, dn0, dm0)``. Backward hooks (:meth:`register_backward_hook`) receive
        dL/dh_t, dL/dc_t, dL/dn_t, dL/dm_t, each ``(T, B, H)``."""
        return self.run_backward(dy, dstate, need_dx)
