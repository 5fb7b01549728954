"""``LSTM``: stacked, optionally bidirectional LSTM layers with PyTorch's parameters."""

from __future__ import annotations

import numpy as np

from .. import functional, kernels
from ..functional import LSTMGrads, LSTMHooks
from .checks import check_positive_int
from .gates import add_gate_grads
from .grad_mode import is_grad_enabled
from .recurrent import RecurrentStack

# What the inference plan stands in for: a subclass that overrides any of these runs
# the general path only.
_PLAN_REPLACES = ("run", "forward_direction", "_weights", "_weight_names_of", "step_hooks",
                  "_initial", "output_size", "state_sizes")  # fmt: skip
# What the training plan stands in for (the forward's and the backward's general path)
_TRAIN_REPLACES = _PLAN_REPLACES + ("run_backward", "backward_direction", "add_extra_grads",
                                    "state_grad_buffers", "_dgates_buffer", "suffix")  # fmt: skip
# (class, what a plan replaces) -> whether the class overrides none of it
_plain_classes: dict[tuple[type, tuple[str, ...]], bool] = {}


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
    # a plain single-layer inference call planned once (kernels._inference_plan), or None
    _inference_plan = None
    # a plain single-layer training step at small batch planned once
    # (kernels._training_plan), or None
    _training_plan = None

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
        weight_ih, weight_hh, bias, weight_hr = self._weights(layer, direction)
        h0, c0 = state
        hooks = self.step_hooks(layer, direction, *x.shape[:2])
        if hooks is None:
            backend = kernels.backend()
            args = (x, weight_ih, weight_hh, bias, h0, c0, lengths, bool(direction), weight_hr)
            if backend is functional:
                y, h_n, c_n, cache = backend.lstm_forward(*args, self.keep_cache)
            else:  # inference keeps the packed weights for the next call
                y, h_n, c_n, cache = backend.lstm_forward(*args, self.keep_cache, reuse_packs=True)
        else:  # only the reference step has hooks
            y, h_n, c_n, cache = functional.lstm_forward(
                x, weight_ih, weight_hh, bias, h0, c0, lengths, bool(direction), weight_hr,
                self.keep_cache, hooks=hooks,
            )  # fmt: skip
        return y, (h_n, c_n), cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        dh_n, dc_n = dstate
        traces = self.state_grad_buffers(*dy.shape[:2]) or (None, None)
        backend = kernels.backend() if cache.hooks is None else functional
        sfx = self.suffix(layer, direction)
        if backend is functional:
            grads = backend.lstm_backward(dy, cache, dh_n, dc_n, need_dx, *traces)
            add_gate_grads(self, sfx, grads, grads.dbias, grads.dbias)
        else:  # the kernel adds the weight gradients into ours: no fresh (4H, I) arrays
            g = self.grads
            into = (g[f"weight_ih{sfx}"], g[f"weight_hh{sfx}"])
            scratch = self._dgates_buffer(direction, cache.gates)
            grads = backend.lstm_backward(
                dy, cache, dh_n, dc_n, need_dx, *traces, grads_into=into, dgates_buffer=scratch
            )
            if self.bias:
                g[f"bias_ih{sfx}"] += grads.dbias
                g[f"bias_hh{sfx}"] += grads.dbias
        if self.proj_size:
            self.grads[f"weight_hr{sfx}"] += grads.dweight_hr
        self.add_extra_grads(grads, sfx)
        return grads.dx, (grads.dh0, grads.dc0)

    def _dgates_buffer(self, direction: int, gates: np.ndarray) -> np.ndarray:
        """The gate gradients' scratch ``(T, B, 4H)`` of one direction, kept across
        backward calls and shared by the layers (one layer's backward at a time; the two
        directions may run at once). A fresh array per call was page-faulted in anew:
        (35, 20, 200) training took 16 % more CPU time, (200, 32, 128) 5 %. A forward
        under :func:`~kioku.nn.no_grad` drops them (:meth:`RecurrentStack.run`)."""
        buffers = self.__dict__.setdefault("_dgates_buffers", {})
        kept = buffers.get(direction)
        if kept is None or kept.shape != gates.shape or kept.dtype != gates.dtype:
            kept = buffers[direction] = np.empty_like(gates)
        return kept

    def __call__(self, x, state=None, lengths=None):
        """Forward; see the class docstring for shapes.

        A plain inference call (inside :func:`~kioku.nn.no_grad`, no forward hooks, no
        ``lengths``) of a float32 single-layer, single-direction layer without projection
        on the ``numba`` backend is planned after its first run at a batch size, and the
        next calls at that batch size run as one compiled call while the input, state and
        weights still fit the plan (:mod:`kioku.kernels._inference_plan`): the same
        results bit for bit, without the per-call checks and decisions. With
        ``batch_first`` only one sequence is planned (its layout is the time-major one).

        Likewise a plain training step (a forward keeping its cache, then
        :meth:`backward` without ``dstate``) of such a layer at a batch the general path
        runs on one thread (batch 1 to 3 at most sizes), time-major, is planned after its
        first run (:mod:`kioku.kernels._training_plan`): the same compiled calls with the
        same arguments, so the same outputs, caches and gradients bit for bit, without
        the general path's per-call checks and decisions."""
        plan = self._inference_plan
        if (
            plan is not None
            and lengths is None
            and not self._forward_hooks
            and not is_grad_enabled()
            and kernels.backend_name() == "numba"
        ):
            if type(x) is np.ndarray and (x.ndim == 2 or self.batch_first):
                out = self._planned_one_sequence(plan, x, state)
            else:
                out = plan.run(self.params, x, state)
            if out is not None:
                if self.keep_cache:  # what run() leaves after a call without a cache
                    self.__dict__.update(
                        caches=[], _run=None, _ran_without_grad=True, keep_cache=False
                    )
                    self.__dict__.pop("_dgates_buffers", None)
                return out
        training = self._training_plan
        if (
            training is not None
            and lengths is None
            and not self.batch_first
            and not self._forward_hooks
            and is_grad_enabled()
        ):
            out = training.forward(self.params, self.grads, x, state)
            if out is not None:
                y, final, cache = out
                # what run() leaves after a call with a cache, and the plan that made it
                run = {"outputs": [[y]], "masks": [None], "shape": y.shape,
                       "unbatched": False, "batch": y.shape[1], "plan": training}  # fmt: skip
                self.__dict__.update(
                    caches=[[cache]], _run=run, _ran_without_grad=False, keep_cache=True
                )
                return y, final
        out = self.run(x, state, lengths)
        if not self.keep_cache and lengths is None:  # it ran without a cache and hooks
            self.__dict__["_inference_plan"] = self._plan_inference(out[0])
        elif lengths is None and not self._forward_hooks and self._run is not None:
            # a step the plan did not take: planned anew for this one's arrays and batch
            self.__dict__["_training_plan"] = self._plan_training(out[0])
        return out

    def _plan_training(self, y: np.ndarray):
        """A plan for the next training steps like the one that returned ``y`` (a forward
        that kept its cache), or ``None`` where this layer or call is not one a plan
        covers (:mod:`kioku.kernels._training_plan`)."""
        if y.ndim != 3 or self.batch_first or not self._plannable(_TRAIN_REPLACES):
            return None
        from ..kernels._training_plan import plan_training

        names = self._weight_names_of(0, 0)[:4]
        return plan_training(names, self.params, self.grads, y.shape[1])

    def _planned_one_sequence(self, plan, x: np.ndarray, state: object):
        """``plan.run`` for one sequence given as unbatched ``x (T, I)`` (state parts
        ``(1, P)``) or, with ``batch_first``, ``x (1, T, I)``: the same memory as
        ``(T, 1, I)``, and outputs shaped as :meth:`run` shapes them; ``None`` for
        anything else."""
        if plan.batch != 1 or not x.flags.c_contiguous:
            return None
        if x.ndim == 2:
            if state is not None:
                if type(state) is not tuple or len(state) != 2:
                    return None
                h0, c0 = state
                if type(h0) is not np.ndarray or type(c0) is not np.ndarray:
                    return None
                if h0.ndim != 2 or c0.ndim != 2:
                    return None
                state = (h0[:, None, :], c0[:, None, :])  # plan.run checks the rest
            out = plan.run(self.params, x[:, None, :], state)
            if out is None:
                return None
            y, (h_n, c_n) = out
            return y[:, 0, :], (h_n[:, 0, :], c_n[:, 0, :])
        if x.ndim != 3 or x.shape[0] != 1:
            return None
        out = plan.run(self.params, x.reshape(x.shape[1], 1, x.shape[2]), state)
        if out is None:
            return None
        y, final = out
        return y.reshape(1, y.shape[0], y.shape[2]), final

    def _plannable(self, replaces: tuple[str, ...]) -> bool:
        """Whether a plan may stand in for this layer's general path: a float32 layer of
        one layer and one direction without projection, on the ``numba`` backend, whose
        class overrides none of ``replaces`` (answered once per class)."""
        key = (type(self), replaces)
        plain = _plain_classes.get(key)
        if plain is None:
            cls = type(self)
            plain = all(getattr(cls, name) is getattr(LSTM, name) for name in replaces)
            _plain_classes[key] = plain
        return (
            plain
            and self.num_layers == 1
            and self.num_directions == 1
            and not self.proj_size
            and self.dtype == np.float32
            and kernels.backend_name() == "numba"
        )

    def _plan_inference(self, y: np.ndarray):
        """A plan for the next inference calls like the one that returned ``y``, or
        ``None`` where this layer or call is not one a plan covers."""
        if y.ndim == 2:  # unbatched
            batch = 1
        else:  # batch_first: one sequence only, whose (1, T, I) is (T, 1, I) in memory
            batch = y.shape[0] if self.batch_first else y.shape[1]
        # batch 1: plan_inference's first rule, checked before the imports
        if batch != 1 or not self._plannable(_PLAN_REPLACES):
            return None
        from ..kernels._inference_plan import plan_inference

        return plan_inference(self._weight_names_of(0, 0)[:4], self.params, batch)

    forward = __call__

    def backward(self, dy, dstate=None, need_dx: bool = True):
        """Backward of the last forward: ``dy`` shaped like ``y``; ``dstate = (dh_n, dc_n)``
        (either may be ``None``). Returns ``dx`` shaped like ``x`` and ``(dh0, dc0)``.
        Backward hooks (:meth:`register_backward_hook`) receive ``(dL/dh_t (T, B, P),
        dL/dc_t (T, B, H))`` of every step."""
        run, plan = self._run, self._training_plan
        if (
            plan is not None
            and dstate is None
            and run is not None
            and run.get("plan") is plan
            and not self._backward_hooks
        ):
            cache = self.caches[0][0]
            scratch = self._dgates_buffer(0, cache.gates)
            out = plan.backward(self.params, self.grads, cache, dy, need_dx, scratch)
            if out is not None:
                return out
        return self.run_backward(dy, dstate, need_dx)
