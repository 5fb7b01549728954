"""``RNN``: the simple (Elman) recurrent layer, parameter for parameter ``torch.nn.RNN``."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..functional import NONLINEARITIES
from .gates import add_gate_grads
from .recurrent import RecurrentStack


class RNN(RecurrentStack):
    """Multi-layer tanh (or ReLU) RNN: the network whose gradient vanishes.

    ``y, h_n = rnn(x, h0=None, lengths=None)``: ``x (T, B, I)`` (``(B, T, I)`` with
    ``batch_first``; unbatched ``(T, I)``), ``h0 (L*D, B, H)``; ``y (T, B, D*H)``,
    ``h_n (L*D, B, H)``. ``dx, dh0 = rnn.backward(dy, dh_n=None)``.
    """

    gates = 1  # one block: the tanh (or ReLU) of the sum

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, merge_mode,
            dtype, rng,
        )  # fmt: skip
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity: expected one of {', '.join(NONLINEARITIES)}, found {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        self.add_direction_params(self.gate_param_shapes)

    def forward_direction(self, x, layer, direction, state, lengths):
        sfx = self.suffix(layer, direction)
        p = self.params
        bias = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"] if self.bias else None
        y, h_n, cache = kernels.backend_for("rnn").rnn_forward(
            x,
            p[f"weight_ih{sfx}"],
            p[f"weight_hh{sfx}"],
            bias,
            state[0],
            lengths,
            bool(direction),
            self.nonlinearity,
            self.keep_cache,
        )
        return y, (h_n,), cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        traces = self.state_grad_buffers(*dy.shape[:2]) or (None,)
        grads = kernels.backend_for("rnn").rnn_backward(dy, cache, dstate[0], need_dx, *traces)
        sfx = self.suffix(layer, direction)
        add_gate_grads(self, sfx, grads, grads.dbias, grads.dbias)
        return grads.dx, (grads.dh0,)

    def __call__(self, x, h0=None, lengths=None):
        """Forward; see the class docstring for shapes."""
        y, (h_n,) = self.run(x, h0, lengths)
        return y, h_n

    forward = __call__

    def backward(self, dy, dh_n=None, need_dx: bool = True):
        """Backward of the last forward: returns ``dx`` shaped like ``x`` and ``dh0``.
        Backward hooks (:meth:`register_backward_hook`) receive ``(dL/dh_t (T, B, H),)``."""
        dx, (dh0,) = self.run_backward(dy, dh_n, need_dx)
        return dx, dh0
