"""``LSTM``: stacked, optionally bidirectional LSTM layers with PyTorch's parameters."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..functional import LSTMGrads, LSTMHooks
from .checks import check_positive_int
from .recurrent import RecurrentStack


class LSTM(RecurrentStack):
    """Multi-layer LSTM, parameter for parameter ``torch.nn.LSTM``.

    ``y, (h_n, c_n) = lstm(x, state=None, lengths=None)``:
    ``x (T, B, I)`` (``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``),
    ``state = (h0 (L*D, B, P), c0 (L*D, B, H))``, ``lengths (B,)`` integers in 1..T.
    ``y (T, B, D*P)`` (concat; ``(T, B, P)`` for merge modes sum, mean, mul), ``h_n (L*D, B, P)``,
    ``c_n (L*D, B, H)``; ``P = proj_size or H``, ``D = 2`` if bidirectional.
    ``dx, (dh0, dc0) = lstm.backward(dy, dstate=None)`` adds parameter gradients into
    ``lstm.grads``. Dropout acts on the output of every layer but the last, in train mode.
    ``unit_forget_bias`` sets the forget gate's total bias to 1 (``bias_ih`` 1, ``bias_hh`` 0).
    Inputs are not checked for NaN or inf: a NaN in sequence ``b`` at step ``t`` makes that
    sequence's outputs NaN from ``t`` on (both ways for bidirectional) and leaves the other
    sequences of the batch untouched.

    The variants (peepholes, layer norm, zoneout, ...) are :class:`~kioku.nn.LSTMVariant`.
    """

    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        merge_mode: str = "concat",
        unit_forget_bias: bool = False,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, merge_mode,
            dtype, rng,
        )  # fmt: skip
        self.proj_size = check_positive_int("proj_size", proj_size, minimum=0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size: expected 0 or less than hidden_size ({self.hidden_size}), "
                f"found {self.proj_size}"
            )
        self.bias = bool(bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._weight_names: dict[tuple[int, int], tuple[str, ...]] = {}
        self.add_direction_params(self._plain_shapes)
        if self.bias and self.unit_forget_bias:
            H = self.hidden_size
            for name, value in self.params.items():
                if name.startswith("bias_ih"):
                    value[H : 2 * H] = 1
                elif name.startswith("bias_hh"):
                    value[H : 2 * H] = 0

    def _plain_shapes(self, layer: int) -> dict[str, tuple[int, ...]]:
        """The parameters of one direction of ``layer``, as ``torch.nn.LSTM`` has them."""
        shapes = self.gate_param_shapes(layer)
        if self.proj_size:
            shapes["weight_hr"] = (self.output_size, self.hidden_size)
        return shapes

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def _weight_names_of(self, layer: int, direction: int) -> tuple[str, ...]:
        """The names of ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` and
        ``weight_hr`` of one direction (whether or not the layer has them)."""
        names = self._weight_names.get((layer, direction))
        if names is None:  # formatted once: a batch-1 step costs a few microseconds in all
            sfx = self.suffix(layer, direction)
            names = tuple(f"{k}{sfx}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            names += (f"weight_hr{sfx}",)
            self._weight_names[(layer, direction)] = names
        return names

    def _weights(self, layer: int, direction: int):
        w_ih, w_hh, b_ih, b_hh, w_hr = self._weight_names_of(layer, direction)
        p = self.params
        bias = p[b_ih] + p[b_hh] if self.bias else None
        return p[w_ih], p[w_hh], bias, p.get(w_hr)

    def step_hooks(self, layer: int, direction: int, steps: int, batch: int) -> LSTMHooks | None:
        """The hooks one direction's step runs with; ``None`` (the plain LSTM, on the
        fastest backend) here, a variant's in :class:`~kioku.nn.LSTMVariant`."""
        return None

    def add_extra_grads(self, grads: LSTMGrads, sfx: str) -> None:
        """Add the gradients of parameters beyond PyTorch's (none here) into ``self.grads``."""

    def forward_direction(self, x, layer, direction, state, lengths):
        """One direction of one layer: ``x (T, B, I)``, ``state = (h0 (B, P), c0 (B, H))``
        (either may be ``None``); returns ``y (T, B, P)``, ``(h_n (B, P), c_n (B, H))`` and
        the cache. The plain cell runs on its backend (:func:`kioku.kernels.backend_for`);
        a variant's step (:meth:`step_hooks`) on the reference, which alone has hooks."""
        weight_ih, weight_hh, bias, weight_hr = self._weights(layer, direction)
        h0, c0 = state
        hooks = self.step_hooks(layer, direction, *x.shape[:2])
        args = (x, weight_ih, weight_hh, bias, h0, c0, lengths, bool(direction), weight_hr)
        if hooks is None:
            y, h_n, c_n, cache = kernels.backend_for("lstm").lstm_forward(*args, self.keep_cache)
        else:
            reference = kernels.backend_for("lstm", "reference")
            y, h_n, c_n, cache = reference.lstm_forward(*args, self.keep_cache, hooks=hooks)
        return y, (h_n, c_n), cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        """Backward of one direction: ``dy (T, B, P)``, ``dstate = (dh_n (B, P), dc_n (B,
        H))`` (either may be ``None``); adds the parameter gradients into ``self.grads``
        (the weights' in place, by the backend) and returns ``dx (T, B, I)`` (or ``None``)
        and ``(dh0 (B, P), dc0 (B, H))``."""
        dh_n, dc_n = dstate
        traces = self.state_grad_buffers(*dy.shape[:2]) or (None, None)
        name = None if cache.hooks is None else "reference"
        w_ih, w_hh, b_ih, b_hh, w_hr = self._weight_names_of(layer, direction)
        g = self.grads
        grads = kernels.backend_for("lstm", name).lstm_backward(
            dy, cache, dh_n, dc_n, need_dx, *traces, grads_into=(g[w_ih], g[w_hh]),
            dgates_buffer=self._dgates_buffer(direction, cache.gates),
        )  # fmt: skip
        if self.bias:
            g[b_ih] += grads.dbias
            g[b_hh] += grads.dbias
        if self.proj_size:
            g[w_hr] += grads.dweight_hr
        self.add_extra_grads(grads, self.suffix(layer, direction))
        return grads.dx, (grads.dh0, grads.dc0)

    def _dgates_buffer(self, direction: int, gates: np.ndarray) -> np.ndarray:
        """The gate gradients' scratch ``(T, B, 4H)`` of one direction, kept across
        backward calls and shared by the layers (one layer's backward at a time; the two
        directions may run at once). A fresh array per call was page-faulted in anew:
        (35, 20, 200) training took 16 % more CPU time, (200, 32, 128) 5 %. A forward
        under :func:`~kioku.nn.no_grad` drops them (:meth:`RecurrentStack.run`)."""
        buffers = self._scratch
        kept = buffers.get(direction)
        if kept is None or kept.shape != gates.shape or kept.dtype != gates.dtype:
            kept = buffers[direction] = np.empty_like(gates)
        return kept

    def __call__(self, x, state=None, lengths=None):
        """Forward; see the class docstring for shapes. Plain float32 directions at batch
        1 (inference) or a small batch (training) run planned behind the backend
        (:mod:`kioku.kernels._inference_plan`, :mod:`kioku.kernels._training_plan`): the
        same results bit for bit, without the general path's per-call decisions."""
        return self.run(x, state, lengths)

    forward = __call__

    def backward(self, dy, dstate=None, need_dx: bool = True):
        """Backward of the last forward: ``dy`` shaped like ``y``; ``dstate = (dh_n, dc_n)``
        (either may be ``None``). Returns ``dx`` shaped like ``x`` and ``(dh0, dc0)``.
        Backward hooks (:meth:`register_backward_hook`) receive ``(dL/dh_t (T, B, P),
        dL/dc_t (T, B, H))`` of every step."""
        return self.run_backward(dy, dstate, need_dx)
