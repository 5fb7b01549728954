"""``RNN``: the simple (Elman) recurrent layer, parameter for parameter ``torch.nn.RNN``."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..functional import NONLINEARITIES
from .recurrent import RecurrentStack


class RNN(RecurrentStack):
    """Multi-layer tanh (or ReLU) RNN: the network whose gradient vanishes.

    ``y, h_n = rnn(x, h0=None, lengths=None)``: ``x (T, B, I)`` (``(B, T, I)`` with
    ``batch_first``; unbatched ``(T, I)``), ``h0 (L*D, B, H)``; ``y (T, B, D*H)``,
    ``h_n (L*D, B, H)``. ``dx, dh0 = rnn.backward(dy, dh_n=None)``.
    """

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
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity: expected one of {', '.join(NONLINEARITIES)}, found {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        self.bias = bool(bias)
        H = self.hidden_size
        bound = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                shapes = {
                    f"weight_ih{sfx}": (H, self.layer_input_size(layer)),
                    f"weight_hh{sfx}": (H, H),
                }
                if self.bias:
                    shapes[f"bias_ih{sfx}"] = (H,)
                    shapes[f"bias_hh{sfx}"] = (H,)
                for name, shape in shapes.items():
                    self.add_param(name, self.rng.uniform(-bound, bound, shape).astype(self.dtype))

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``)."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "nonlinearity": self.nonlinearity,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dtype": self.dtype.name,
        }

    def forward_direction(self, x, layer, direction, state, lengths):
        sfx = self.suffix(layer, direction)
        p = self.params
        bias = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"] if self.bias else None
        y, h_n, cache = kernels.backend().rnn_forward(
            x,
            p[f"weight_ih{sfx}"],
            p[f"weight_hh{sfx}"],
            bias,
            state[0],
            lengths,
            bool(direction),
            self.nonlinearity,
        )
        return y, (h_n,), cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        traces = self.state_grad_buffers(*dy.shape[:2]) or (None,)
        grads = kernels.backend().rnn_backward(dy, cache, dstate[0], need_dx, *traces)
        sfx = self.suffix(layer, direction)
        g = self.grads
        g[f"weight_ih{sfx}"] += grads.dweight_ih
        g[f"weight_hh{sfx}"] += grads.dweight_hh
        if self.bias:
            g[f"bias_ih{sfx}"] += grads.dbias
            g[f"bias_hh{sfx}"] += grads.dbias
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
