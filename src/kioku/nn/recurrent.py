"""What stacked, bidirectional recurrent layers share: layout at the public boundary,
the loop over layers and directions, the merge of the two directions, dropout between
layers, and the stacking of initial and final states.

Subclasses (:class:`~kioku.nn.LSTM`, :class:`~kioku.nn.RNN`) say how one direction of
one layer runs forward and backward; states are tuples of arrays (``(h, c)`` or ``(h,)``).

The layers reach their math through one registry, :func:`kioku.kernels.backend_for`;
plans, packed weights and thread splits live behind it. Adding a cell (the files to
write, the backend contract): ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..functional.merge import (
    MERGE_MODES,
    merge_backward_inputs,
    merge_directions,
    merge_directions_backward,
)
from ..kernels._threads import plan, run_directions
from .batch_shard import batch_random
from .checks import check_float_array, check_positive_int, check_shape
from .gates import gate_shapes
from .grad_mode import is_grad_enabled
from .hooks import HookHandle, add_hook
from .module import Module, as_rng, check_dtype, config_from_signatures
from .stack_inputs import stacked_state, to_time_major


class RecurrentStack(Module):
    """Base of the multi-layer, optionally bidirectional recurrent layers."""

    state_names: tuple[str, ...] = ("h",)
    gates: int = 4  # gate blocks in weight_ih and weight_hh (the LSTM's i, f, g, o)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        merge_mode: str,
        dtype: np.dtype | type,
        rng: np.random.Generator | int | None,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), found {dropout!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"merge_mode: expected one of {', '.join(MERGE_MODES)}, found {merge_mode!r}"
            )
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.merge_mode = merge_mode
        self.dtype = check_dtype(dtype)
        self.rng = as_rng(rng)
        self.caches: list[list[object]] = []
        self._run: dict | None = None
        self._forward_hooks: dict = {}
        self._backward_hooks: dict = {}
        self._state_grads: tuple[np.ndarray, ...] | None = None
        # whether forward_direction asks its backend for a cache (False under no_grad())
        self.keep_cache = True
        self._ran_without_grad = False
        # what a subclass keeps between its backward calls (LSTM: the gate gradients'
        # buffers per direction); emptied by a forward under no_grad()
        self._scratch: dict = {}

    def add_direction_params(
        self,
        shapes: Callable[[int], dict[str, tuple[int, ...]]],
        fixed: Callable[[str, tuple[int, ...]], np.ndarray | None] | None = None,
    ) -> None:
        """Register, for every layer and direction in PyTorch's order, the parameters
        ``shapes(layer)`` names (``{"weight_ih": (4H, I), ...}``, suffix added), each drawn
        from U(-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them, except those for which
        ``fixed(name, shape)`` returns an initial value (nothing is drawn for them)."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                for name, shape in shapes(layer).items():
                    value = None if fixed is None else fixed(name, shape)
                    if value is None:
                        value = self.rng.uniform(-bound, bound, shape)
                    self.add_param(name + sfx, np.asarray(value, self.dtype))

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``), read from the
        signatures of the constructors, each from the attribute of the same name."""
        return config_from_signatures(self, RecurrentStack)

    # -- hooks -------------------------------------------------------------------
    def register_forward_hook(self, hook) -> HookHandle:
        """Call ``hook(module, layer, direction, cache)`` after each direction's forward.

        ``cache`` is what the direction's backward will read (for an LSTM a
        :class:`~kioku.functional.LSTMCache`: gates ``(T, B, 4H)``, states ``(T+1, B, .)``);
        it must not be changed. Returns a handle whose ``remove()`` unregisters the hook.
        """
        return add_hook(self._forward_hooks, hook, "hook")

    def register_backward_hook(self, hook) -> HookHandle:
        """Call ``hook(module, layer, direction, state_grads)`` after each direction's
        backward; ``state_grads`` holds, per state component (``state_names``), the total
        gradient reaching the state leaving every step, ``(T, B, S)`` time-major (for an
        LSTM dL/dh_t ``(T, B, P)`` and dL/dc_t ``(T, B, H)``). Registering one makes the
        backward record these; returns a handle whose ``remove()`` unregisters it."""
        return add_hook(self._backward_hooks, hook, "hook")

    def state_grad_buffers(self, steps: int, batch: int) -> tuple[np.ndarray, ...] | None:
        """For :meth:`backward_direction`: ``None`` when no backward hook listens, else one
        empty ``(T, B, S)`` array per state component for the functional backward to fill."""
        if not self._backward_hooks:
            return None
        self._state_grads = tuple(
            np.empty((steps, batch, size), self.dtype) for size in self.state_sizes
        )
        return self._state_grads

    # -- sizes -------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """Features per step of one direction's output."""
        return self.hidden_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state component."""
        return (self.output_size,)

    def layer_input_size(self, layer: int) -> int:
        """Input features of ``layer``: the input, or the merged output below it."""
        if layer == 0:
            return self.input_size
        merged = self.num_directions if self.merge_mode == "concat" else 1
        return self.output_size * merged

    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        """PyTorch's parameter-name suffix, e.g. ``_l1_reverse``."""
        return f"_l{layer}" + ("_reverse" if direction else "")

    def gate_param_shapes(self, layer: int) -> dict[str, tuple[int, ...]]:
        """PyTorch's parameters of one direction of ``layer`` for ``gates`` gate blocks:
        ``weight_ih (G*H, in)``, ``weight_hh (G*H, P)`` and, with ``bias``, the two biases."""
        return gate_shapes(
            self.gates, self.hidden_size, self.layer_input_size(layer), self.bias, self.output_size
        )

    def step_flops(self, batch: int) -> float:
        """Recurrent flops of one step of one direction over ``batch`` sequences (what
        :func:`~kioku.kernels._threads.plan` weighs): ``2 G B H P`` for ``G`` gate blocks
        (the LSTM's ``8 B H P``, the GRU's ``6 B H H``, the RNN's ``2 B H H``)."""
        return 2.0 * self.gates * batch * self.hidden_size * self.output_size

    def directions_independent(self) -> bool:
        """Whether the two directions of a layer may run at the same time: ``False`` where
        they draw from the layer's one generator (the draws must keep their order)."""
        return True

    def _directions_in_parallel(self, batch: int) -> bool:
        if self.num_directions == 1 or not self.directions_independent():
            return False
        return plan(batch, self.step_flops(batch), 2).parallel_directions

    # -- per-direction methods, for subclasses ----------------------------------
    def forward_direction(self, x, layer, direction, state, lengths):  # pragma: no cover
        """Run one direction: ``x (T, B, I)``, ``state`` a tuple of ``(B, S)`` arrays.
        Returns ``y (T, B, P)``, the final state tuple and a cache."""
        raise NotImplementedError

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):  # pragma: no cover
        """Backward of one direction; accumulates parameter gradients into ``self.grads``.
        Returns ``dx (T, B, I)`` (or ``None``) and the initial-state gradient tuple."""
        raise NotImplementedError

    # -- helpers of run and run_backward ------------------------------------------
    def _initial(self, state: object, batch: int, unbatched: bool, name: str) -> list:
        """Per (layer, direction) state tuples from a stacked ``state`` (see
        :func:`~kioku.nn.stack_inputs.stacked_state`)."""
        return stacked_state(
            state, self.num_layers * self.num_directions, self.state_names, self.state_sizes,
            self.dtype, batch, unbatched, name,
        )  # fmt: skip

    def _merge(self, outputs: list[np.ndarray]) -> np.ndarray:
        return outputs[0] if len(outputs) == 1 else merge_directions(*outputs, self.merge_mode)

    def _split(self, dmerged: np.ndarray, outputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(outputs) == 1:
            return [dmerged]
        return list(merge_directions_backward(dmerged, *outputs, self.merge_mode))

    def run(self, x: object, state: object = None, lengths: object = None):
        """Forward over ``x``; returns ``y`` and the stacked final-state tuple.

        ``x`` is ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``) or unbatched
        ``(T, I)``; each state component is ``(L * D, B, S)`` (``(L * D, S)`` unbatched).
        ``y`` is ``(T, B, D * P)`` for concat, ``(T, B, P)`` for the other merges.
        """
        x, unbatched = to_time_major(x, self.dtype, self.input_size, self.batch_first)
        T, B, _ = x.shape
        if lengths is not None:
            if unbatched:
                raise ValueError("lengths: expected None for unbatched input (T, I), found lengths")
            lengths = np.asarray(lengths)
            from ..functional.sequence import length_mask

            length_mask(lengths, T, B)  # validates before anything runs
        if state is None:  # what _initial gives, without its call (µs count at batch 1)
            initial = [(None,) * len(self.state_names)] * (self.num_layers * self.num_directions)
        else:
            initial = self._initial(state, B, unbatched, "state")
        grad = is_grad_enabled()  # read here: the directions may run on other threads
        keep = grad or bool(self._forward_hooks)  # a forward hook reads the cache
        # the previous run's buffers go first, in one update (four __setattr__ at batch 1)
        self.__dict__.update(caches=[], _run=None, _ran_without_grad=not grad, keep_cache=keep)
        if not grad:  # nor the scratch a subclass keeps for its backward (LSTM's dgates)
            self._scratch.clear()
        if self.num_layers == 1 and self.num_directions == 1:  # at batch 1, µs count
            return self._run_single(x, initial[0], lengths, grad, unbatched)
        parallel = self._directions_in_parallel(B)
        caches, outputs_per_layer, masks, finals = [], [], [], []
        layer_input = x
        for layer in range(self.num_layers):
            if self.num_directions == 1:  # no tasks to build: this call may be a single step
                ran = [self.forward_direction(layer_input, layer, 0, initial[layer], lengths)]
            else:
                forward = self.forward_direction
                tasks = [partial(forward, layer_input, layer, d, initial[2 * layer + d], lengths)
                         for d in (0, 1)]  # fmt: skip
                ran = run_directions(tasks, parallel, spin=not grad)
            outputs, layer_caches = [], []
            for direction, (y, final, cache) in enumerate(ran):
                if self._forward_hooks:
                    for hook in list(self._forward_hooks.values()):
                        hook(self, layer, direction, cache)
                outputs.append(y)
                layer_caches.append(cache)
                finals.append(final)
            caches.append(layer_caches)
            outputs_per_layer.append(outputs)
            layer_input = self._merge(outputs)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = batch_random(self.rng, layer_input.shape, 1) >= self.dropout
                mask = keep.astype(self.dtype) / self.dtype.type(1 - self.dropout)
                masks.append(mask)
                layer_input = layer_input * mask
            else:
                masks.append(None)
        if grad:
            self.caches = caches
            self._run = {
                "outputs": [  # one direction: the layer's own output, which its caller holds
                    o if len(o) == 1 else list(merge_backward_inputs(*o, self.merge_mode))
                    for o in outputs_per_layer
                ],
                "masks": masks,
                "shape": layer_input.shape,
                "unbatched": unbatched,
                "batch": B,
            }
        if len(finals) == 1:  # a view: each final state is a fresh array of the direction's
            stacked = tuple(part[None] for part in finals[0])
        else:
            stacked = tuple(np.stack(parts) for parts in zip(*finals))
        y = layer_input
        if unbatched:
            return y[:, 0, :], tuple(s[:, 0, :] for s in stacked)
        if self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return y, stacked

    def _run_single(self, x: np.ndarray, state: tuple, lengths: np.ndarray | None, grad: bool,
                    unbatched: bool):  # fmt: skip
        """:meth:`run` of one layer in one direction (no merge, no dropout between layers)
        from the checked ``x (T, B, I)`` and ``state``, a tuple of ``(B, S)`` arrays or
        ``None``: what a batch-1 call pays on top of its backend's call is this alone."""
        y, final, cache = self.forward_direction(x, 0, 0, state, lengths)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                hook(self, 0, 0, cache)
        if grad:
            self.caches = [[cache]]
            self._run = {"outputs": [[y]], "masks": [None], "shape": y.shape,
                         "unbatched": unbatched, "batch": x.shape[1]}  # fmt: skip
        stacked = tuple([part[None] for part in final])  # views of fresh arrays, as in run
        if unbatched:
            return y[:, 0, :], tuple([s[:, 0, :] for s in stacked])
        if self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return y, stacked

    def _run_single_backward(self, dy: np.ndarray, dstate: tuple, need_dx: bool,
                             unbatched: bool):  # fmt: skip
        """:meth:`run_backward` of one layer in one direction from the checked ``dy (T, B,
        P)`` and ``dstate``, a tuple of ``(B, S)`` arrays or ``None``."""
        self._state_grads = None
        dx, dstart = self.backward_direction(dy, self.caches[0][0], 0, 0, dstate, need_dx)
        if self._state_grads is not None:
            for hook in list(self._backward_hooks.values()):
                hook(self, 0, 0, self._state_grads)
            self._state_grads = None
        stacked = tuple([part[None] for part in dstart])  # views, as in run_backward
        if unbatched:
            return (None if dx is None else dx[:, 0, :]), tuple([s[:, 0, :] for s in stacked])
        if dx is not None and self.batch_first:
            dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        return dx, stacked

    def run_backward(self, dy: object, dstate: object = None, need_dx: bool = True):
        """Backward of the last :meth:`run`; returns ``dx`` (shaped like ``x``) and the
        initial-state gradient tuple (shaped like the state). Parameter gradients are
        added into ``self.grads``."""
        if self._run is None:
            if self._ran_without_grad:
                raise RuntimeError(
                    "backward: the last forward ran inside kioku.nn.no_grad() and kept no "
                    "cache for a backward; run the forward outside no_grad() to backpropagate"
                )
            raise RuntimeError("backward: call the layer forward first")
        run = self._run
        unbatched, B = run["unbatched"], run["batch"]
        dy = check_float_array("dy", dy, self.dtype)
        if unbatched:
            check_shape("dy", dy, (run["shape"][0], run["shape"][2]))
            dy = dy[:, None, :]
        else:
            expected = run["shape"]
            if self.batch_first:
                expected = (expected[1], expected[0], expected[2])
            check_shape("dy", dy, expected)
            if self.batch_first:
                dy = dy.transpose(1, 0, 2)
        if dstate is None:  # what _initial gives, without its call
            dfinal = [(None,) * len(self.state_names)] * (self.num_layers * self.num_directions)
        else:
            dfinal = self._initial(dstate, B, unbatched, "dstate")
        if self.num_layers == 1 and self.num_directions == 1:  # at batch 1, µs count
            return self._run_single_backward(np.ascontiguousarray(dy), dfinal[0], need_dx,
                                             unbatched)  # fmt: skip
        dinitial = [None] * (self.num_layers * self.num_directions)
        parallel = not self._backward_hooks and self._directions_in_parallel(B)
        dmerged = np.ascontiguousarray(dy)
        for layer in reversed(range(self.num_layers)):
            mask = run["masks"][layer]
            if mask is not None:
                dmerged = dmerged * mask
            douts = self._split(dmerged, run["outputs"][layer])

            def direction_task(direction: int, layer: int = layer, douts=douts):
                index = layer * self.num_directions + direction
                return lambda: self.backward_direction(
                    douts[direction],
                    self.caches[layer][direction],
                    layer,
                    direction,
                    dfinal[index],
                    need_dx or layer > 0,
                )

            tasks = [direction_task(d) for d in range(self.num_directions)]
            dx = None
            if parallel:  # backward hooks make it sequential: they share _state_grads
                results = run_directions(tasks, True)
            for direction, task in enumerate(tasks):
                self._state_grads = None
                dx_dir, dstart = results[direction] if parallel else task()
                dinitial[layer * self.num_directions + direction] = dstart
                if self._state_grads is not None:
                    for hook in list(self._backward_hooks.values()):
                        hook(self, layer, direction, self._state_grads)
                    self._state_grads = None
                if dx_dir is not None:
                    dx = dx_dir if dx is None else dx + dx_dir
            dmerged = dx
        # one direction: views, as in run (a direction's gradients are fresh arrays)
        stacked = tuple(p[0][None] if len(p) == 1 else np.stack(p) for p in zip(*dinitial))
        if unbatched:
            return (None if dx is None else dx[:, 0, :]), tuple(s[:, 0, :] for s in stacked)
        if dx is not None and self.batch_first:
            dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        return dx, stacked
