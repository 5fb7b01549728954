"""A float32 LSTM layer's training step at small batch planned once, then run with the
compiled parts called straight from here while nothing it was planned on has changed.

At batch 1 a training step's compiled parts take about 150 µs (H = 64, 50 steps), and what
the general path decides and checks around it (:meth:`~kioku.nn.RecurrentStack.run`
and :meth:`~kioku.nn.RecurrentStack.run_backward`, the layer's per-direction methods,
:func:`~kioku.kernels.numba_lstm.lstm_forward` and ``lstm_backward``) cost 55 µs more
on every step. A :class:`TrainingPlan` takes those decisions once, for the layer's
parameter and gradient arrays and a batch size, and then checks on each call, in
nanoseconds each, only what can change: the input's type, dtype, shape and layout, the
state's, the upstream gradient's, that the layer still holds the same parameter and
gradient arrays with the same shapes, and the backend and the knobs the general path
reads. Anything else returns ``None``, and the caller takes the general path.

The compiled calls are the ones the general path makes for the same step, with the
same arguments (weights packed afresh on every forward and backward, as there: a
training step changes them): the same results bit for bit, and no compilation of its
own. Only the steps the general path runs on one thread whatever the thread budget,
without the per-step projection and with the packed projection, are planned (batch 1
to 3 at most sizes); a backward on the packed weight gradients (``I`` and ``H``
multiples of the packed kernel's panel width) is planned, other backwards return
``None`` and run the general path on the planned forward's cache.

Thread safety: a plan holds no scratch (the gate-gradient buffer is the layer's, as on
the general path), so it is as safe as the layer it belongs to.
"""

from __future__ import annotations

import numpy as np

from .. import functional
from . import _inference_plan, _threads, backend_name, numba_lstm
from ._contract import steps_per_sequence
from ._entries import packed_backward_one_part
from ._loop_gemms import project_inputs
from ._lstm_loops import lstm_forward_loop
from ._pack_cache import packed
from ._packed import NR
from ._primitives import L2_BYTES

_F32 = _inference_plan._F32


def _plain(array: object, shape: tuple[int, ...]) -> bool:
    """A C-contiguous float32 ndarray (not a subclass) of ``shape``."""
    return _inference_plan._plain(array, len(shape)) and array.shape == shape


class TrainingPlan:
    """One layer's training step (forward keeping a cache, then backward) at batch
    ``batch``: see the module docstring. ``names`` are the parameters' keys
    ``(weight_ih, weight_hh, bias_ih, bias_hh)`` (the biases ``None`` without bias)."""

    __slots__ = ("names", "weights", "grads", "batch", "features", "hidden", "tiled",
                 "packed_grads", "shapes", "bias_shape")  # fmt: skip

    def __init__(self, names: tuple, weights: tuple, grads: tuple, batch: int) -> None:
        self.names, self.weights, self.grads, self.batch = names, weights, grads, batch
        weight_ih, weight_hh = weights[0], weights[1]
        self.features = weight_ih.shape[1]
        self.hidden = weight_hh.shape[1]
        self.shapes = (weight_ih.shape, weight_hh.shape)
        self.bias_shape = (weight_hh.shape[0],)
        self.tiled = weight_hh.nbytes > L2_BYTES
        # lstm_backward's rule for its packed weight gradients
        self.packed_grads = self.features % NR == 0 and self.hidden % NR == 0

    def _current(self, params: dict, grads: dict) -> bool:
        """Whether the layer still holds the planned arrays, with their shapes."""
        w_ih, w_hh, b_ih, b_hh = self.weights
        g_ih, g_hh, gb_ih, gb_hh = self.grads
        n_ih, n_hh, n_bih, n_bhh = self.names
        get, grad = params.get, grads.get
        if get(n_ih) is not w_ih or get(n_hh) is not w_hh:
            return False
        if grad(n_ih) is not g_ih or grad(n_hh) is not g_hh:
            return False
        if n_bih is not None and (
            get(n_bih) is not b_ih or get(n_bhh) is not b_hh
            or grad(n_bih) is not gb_ih or grad(n_bhh) is not gb_hh
            or b_ih.shape != self.bias_shape or b_hh.shape != self.bias_shape
            or gb_ih.shape != self.bias_shape or gb_hh.shape != self.bias_shape
        ):  # fmt: skip
            return False
        # arrays reshaped in place since planning (the compiled code checks no bounds)
        return (
            w_ih.shape == g_ih.shape == self.shapes[0]
            and w_hh.shape == g_hh.shape == self.shapes[1]
        )

    def forward(
        self, params: dict, grads: dict, x: object, state: object
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], functional.LSTMCache] | None:
        """``y (T, B, H), (h_n (1, B, H), c_n (1, B, H))`` and the cache the backward
        reads, for ``x (T, B, I)`` and ``state`` (``None`` or ``(h0 (1, B, H), c0 (1, B,
        H))``), as :meth:`~kioku.nn.RecurrentStack.run` gives them with a cache kept;
        ``None`` when anything differs from what the plan was made for."""
        if type(x) is not np.ndarray or x.dtype != _F32 or x.ndim != 3:
            return None
        T, B, I = x.shape
        H = self.hidden
        if B != self.batch or I != self.features or not x.flags.c_contiguous:
            return None
        if T == 0 or T * B > numba_lstm.PACKED_PROJECTION_ROWS or backend_name() != "numba":
            return None
        if not self._current(params, grads):
            return None
        if state is not None:
            if type(state) is not tuple or len(state) != 2:
                return None
            if not (_plain(state[0], (1, B, H)) and _plain(state[1], (1, B, H))):
                return None
        weight_ih, weight_hh, bias_ih, bias_hh = self.weights
        bias = bias_ih + bias_hh if bias_ih is not None else np.zeros(4 * H, _F32)
        panels = packed(weight_hh, True, False)  # afresh: a training step changes them
        panels_ih = packed(weight_ih, True, False)
        y = np.empty((T, B, H), _F32)
        h_state = np.empty((T + 1, B, H), _F32)
        c_state = np.empty((T + 1, B, H), _F32)
        if state is None:
            h_state[0] = 0
            c_state[0] = 0
        else:
            h_state[0] = state[0][0]
            c_state[0] = state[1][0]
        tanh_c = np.empty((T, B, H), _F32)
        gates = np.empty((T, B, 4 * H), _F32)
        lengths = steps_per_sequence(None, T, B)
        project_inputs(x.reshape(T * B, I), weight_ih, gates.reshape(T * B, 4 * H), 0, 1,
                       panels_ih, True)  # fmt: skip
        lstm_forward_loop(
            gates, weight_hh, weight_hh, panels, weight_hh, weight_hh, h_state, c_state, tanh_c,
            tanh_c, y, lengths, False, False, 0, B, self.tiled, True, x, panels_ih, bias, False,
        )  # fmt: skip
        cache = functional.LSTMCache(
            x, weight_ih, weight_hh, None, gates, h_state, c_state, tanh_c, None, None, False
        )
        return y, (h_state[T : T + 1].copy(), c_state[T : T + 1].copy()), cache

    def backward(
        self, params: dict, grads: dict, cache: functional.LSTMCache, dy: object,
        need_dx: bool, dgates: np.ndarray,
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]] | None:  # fmt: skip
        """The backward of a planned forward's ``cache`` for ``dy (T, B, H)`` (no state
        gradient coming in): the weight and bias gradients added into the layer's
        ``grads``, ``dgates (T, B, 4H)`` the layer's scratch; returns ``dx (T, B, I)``
        (``None`` without ``need_dx``) and ``(dh0 (1, B, H), dc0 (1, B, H))``, or ``None``
        where the general path must run (nothing written then)."""
        if not (self.packed_grads and numba_lstm.PACKED_WEIGHT_GRADIENTS):
            return None
        gates = cache.gates
        T, B, G = gates.shape
        H, I = self.hidden, self.features
        if not _plain(dy, (T, B, H)):
            return None
        if backend_name() != "numba" or not self._current(params, grads):
            return None
        weight_ih, weight_hh = self.weights[0], self.weights[1]  # the forward's (cache's)
        panels = packed(weight_hh, False, False)
        dh = np.zeros((B, H), _F32)
        dc = np.zeros((B, H), _F32)
        dh_step = np.empty((B, H), _F32)
        dh_rec = np.empty((B, H), _F32)
        dbias = np.empty(G, _F32)
        dx = np.empty((T, B, I), _F32) if need_dx else None
        lengths = steps_per_sequence(None, T, B)
        grad_ih, grad_hh, grad_bih, grad_bhh = self.grads
        packed_backward_one_part(
            dy, gates, cache.c_state, cache.tanh_c, weight_hh, weight_hh, panels, weight_hh,
            weight_hh, dgates, dh, dc, dgates, dh_step, dh_step, dh_rec, lengths, False,
            self.tiled, cache.x.reshape(T * B, I), cache.h_state[:T].reshape(T * B, H),
            weight_ih, need_dx, (dx if need_dx else dgates).reshape(T * B, -1), grad_ih,
            grad_hh, dbias, True,
        )  # fmt: skip
        if grad_bih is not None:
            grad_bih += dbias
            grad_bhh += dbias
        return dx, (dh[None], dc[None])


def plan_training(
    names: tuple, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], batch: int
) -> TrainingPlan | None:
    """A plan for a float32 layer without projection whose ``weight_ih (4H, I)``,
    ``weight_hh (4H, H)`` and (``bias_ih``, ``bias_hh`` (4H,), or neither) are
    ``params[name]`` for ``names``, with gradients ``grads[name]`` of the same shapes,
    at batch ``batch``; ``None`` where the general path would not run such a step on one
    thread whatever the thread budget, with the packed projection over all steps (see
    the module docstring)."""
    weight_ih, weight_hh = params.get(names[0]), params.get(names[1])
    if not (_inference_plan._plain(weight_ih, 2) and _inference_plan._plain(weight_hh, 2)):
        return None
    G, H = weight_hh.shape
    I = weight_ih.shape[1]
    if G != 4 * H or weight_ih.shape[0] != G or H == 0 or I == 0:
        return None
    # lstm_forward's rules, the batch's first: one slice whatever the budget
    # (_threads.plan), no per-step projection (fused)
    if batch // _threads.MIN_ROWS >= 2 and 8.0 * batch * H * H >= _threads.MIN_FLOPS:
        return None
    if (
        batch >= numba_lstm.FUSED_MIN_ROWS
        and weight_ih.nbytes + weight_hh.nbytes <= numba_lstm.FUSED_MAX_BYTES
    ):
        return None
    shapes = {names[0]: (G, I), names[1]: (G, H), names[2]: (G,), names[3]: (G,)}
    if names[2] not in params and names[3] not in params:
        names = (names[0], names[1], None, None)
    for name in names:
        if name is not None and not (
            _plain(params.get(name), shapes[name])
            and _plain(grads.get(name), shapes[name])
            and grads[name].flags.writeable
        ):
            return None
    weights = tuple(None if n is None else params[n] for n in names)
    gradients = tuple(None if n is None else grads[n] for n in names)
    return TrainingPlan(names, weights, gradients, batch)
