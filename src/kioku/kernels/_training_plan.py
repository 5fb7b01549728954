"""A float32 LSTM direction's training step at small batch planned once per pair of
weight arrays and batch size, then run with the compiled parts called straight from here
while those arrays live.

At batch 1 a training step's compiled parts take about 150 µs (H = 64, 50 steps), and
what :func:`~kioku.kernels.numba_lstm.lstm_forward` and ``lstm_backward`` decide and
check around them (:func:`._path.choose_path`, the dtypes, the shapes, the buffers) costs
more on every step. A :class:`TrainingPlan` takes those decisions once for the weights
``(weight_ih, weight_hh)`` at one batch size: it is cached here, keyed on the two arrays
(their identity, held by weak references, so a dropped layer drops its plan) and the
batch, and then checks on each call, in nanoseconds each, only what can change: the
input's type, dtype, shape and layout, the state's, the bias's, the upstream gradient's,
the gradient buffers', and the weights' shapes. Anything else returns ``None``, and the
general path runs.

The compiled calls are the ones the general path makes for the same step, with the same
arguments (weights packed afresh on every forward and backward, as there: a training
step changes them): the same results bit for bit, and no compilation of its own. Only
the steps the general path runs on one thread whatever the thread budget, without the
per-step projection and with the packed projection, are planned (batch 1 to 7 at most
sizes; the path's ``budget_free``, ``fused`` and ``max_steps``), and only calls short
enough that the GEMMs around the loop stay on one thread too (``GEMM_SPLIT_FLOPS``: a
plan's ``solo_steps``); a backward on the
packed weight gradients (the path's ``packed_grads``) is planned, other backwards run
the general path on the planned forward's cache (the same cache bit for bit).

Thread safety: a plan holds no scratch (the gate-gradient buffer is the caller's), so
it is as safe as the layer it belongs to.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from .. import functional
from . import _mkl_units, _path, _threads
from ._contract import steps_per_sequence
from ._entries import one_part_backward, train_forward_one_part
from ._loop_gemms import project_inputs
from ._lstm_loops import lstm_forward_loop
from ._pack_cache import SPLIT_PACK_BYTES, packed

_NOT_PACKED = np.empty((0, 0, 0), np.float32)  # the entries pack weight_hh themselves
_F32 = np.dtype(np.float32)

# (id(weight_ih), id(weight_hh), batch) -> plan (None inside: refused for good); an
# entry leaves when either array dies
_plans: dict[tuple[int, int, int], TrainingPlan] = {}


def _plain(array: object, shape: tuple[int, ...]) -> bool:
    """A C-contiguous float32 ndarray (not a subclass) of ``shape``."""
    return (
        type(array) is np.ndarray
        and array.dtype == _F32
        and array.shape == shape
        and array.flags.c_contiguous
    )


class TrainingPlan:
    """One direction's training step (forward keeping a cache, then backward) at batch
    ``batch`` for one pair of weight arrays: see the module docstring. ``path`` is
    ``None`` for weights and batches no plan covers (kept, so that they are not weighed
    again on every call)."""

    __slots__ = ("refs", "batch", "features", "hidden", "path", "solo_steps", "__weakref__")

    def __init__(self, weight_ih: np.ndarray, weight_hh: np.ndarray, batch: int,
                 path: _path.Path | None) -> None:  # fmt: skip
        key = (id(weight_ih), id(weight_hh), batch)
        # the most steps whose GEMMs around the loop stay under GEMM_SPLIT_FLOPS, so that
        # the general path would not split them whatever the thread budget
        per_step = max(8.0 * batch * weight_hh.shape[1] * weight_ih.shape[1], 1.0)
        least = _threads.GEMM_SPLIT_FLOPS
        self.solo_steps = math.ceil(least / per_step) - 1 if math.isfinite(least) else 1 << 62

        def forget(_: object, key: tuple[int, int, int] = key) -> None:
            _plans.pop(key, None)

        self.refs = (weakref.ref(weight_ih, forget), weakref.ref(weight_hh, forget))
        self.batch, self.path = batch, path
        self.features, self.hidden = weight_ih.shape[1], weight_hh.shape[1]

    def _current(self, weight_ih: np.ndarray, weight_hh: np.ndarray) -> bool:
        """Whether these are the planned arrays, with the planned shapes."""
        H, I = self.hidden, self.features
        return (
            self.refs[0]() is weight_ih
            and self.refs[1]() is weight_hh
            and weight_ih.shape == (4 * H, I)
            and weight_hh.shape == (4 * H, H)
        )

    def forward(
        self, x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
        bias: np.ndarray | None, h0: object, c0: object,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, functional.LSTMCache] | None:  # fmt: skip
        """``lstm_forward``'s ``y (T, B, H), h_n (B, H), c_n (B, H)`` and cache for ``x
        (T, B, I)``, ``bias (4H,)`` or ``None``, ``h0``/``c0`` ``(B, H)`` or ``None``;
        ``None`` when anything differs from what the plan was made for."""
        path = self.path
        if path is None or x.dtype != _F32 or not x.flags.c_contiguous:
            return None
        T, B, I = x.shape
        H = self.hidden
        if B != self.batch or I != self.features or T == 0 or T > path.max_steps:
            return None
        if T > self.solo_steps:  # the general path splits the GEMMs around the loop
            return None
        if not self._current(weight_ih, weight_hh):
            return None
        if bias is None:
            bias = np.zeros(4 * H, _F32)
        elif not _plain(bias, (4 * H,)):
            return None
        if (h0 is None) != (c0 is None):
            return None
        if h0 is not None and not (_plain(h0, (B, H)) and _plain(c0, (B, H))):
            return None
        y = np.empty((T, B, H), _F32)
        h_state = np.empty((T + 1, B, H), _F32)
        c_state = np.empty((T + 1, B, H), _F32)
        if h0 is None:
            h_state[0] = 0
            c_state[0] = 0
        else:
            h_state[0] = h0
            c_state[0] = c0
        tanh_c = np.empty((T, B, H), _F32)
        gates = np.empty((T, B, 4 * H), _F32)
        if max(weight_ih.nbytes, weight_hh.nbytes) < SPLIT_PACK_BYTES:  # one dispatch
            train_forward_one_part(x, weight_ih, weight_hh, bias, gates, h_state, c_state,
                                   tanh_c, y, path.tiled)  # fmt: skip
        else:  # packed by every thread: see _pack_cache.SPLIT_PACK_BYTES
            panels = packed(weight_hh, True, False)  # afresh: a training step changes them
            panels_ih = packed(weight_ih, True, False)
            project_inputs(x.reshape(T * B, I), weight_ih, gates.reshape(T * B, 4 * H), 0, 1,
                           panels_ih, True)  # fmt: skip
            lstm_forward_loop(
                gates, weight_hh, weight_hh, panels, weight_hh, weight_hh, h_state, c_state,
                tanh_c, tanh_c, y, steps_per_sequence(None, T, B), False, False, 0, B,
                path.tiled, True, x, panels_ih, bias, False,
            )  # fmt: skip
        cache = functional.LSTMCache(
            x, weight_ih, weight_hh, None, gates, h_state, c_state, tanh_c, None, None, False
        )
        return y, h_state[T].copy(), c_state[T].copy(), cache

    def backward(
        self, dy: object, cache: functional.LSTMCache, need_dx: bool,
        grads_into: object, dgates: object,
    ) -> functional.LSTMGrads | None:  # fmt: skip
        """``lstm_backward``'s gradients of a plain forward's ``cache`` for ``dy (T, B,
        H)`` (no state gradient coming in), the weight gradients added into ``grads_into
        = (gw_ih (4H, I), gw_hh (4H, H))`` and returned as those arrays, ``dgates (T, B,
        4H)`` the scratch; ``None`` where the general path must run (nothing written)."""
        path = self.path
        if path is None or not path.packed_grads or type(grads_into) is not tuple:
            return None
        gates = cache.gates
        T, B, G = gates.shape
        H, I = self.hidden, self.features
        if B != self.batch or not _plain(dy, (T, B, H)) or not _plain(dgates, (T, B, G)):
            return None
        if T > self.solo_steps:  # as in forward: the general path splits the GEMMs
            return None
        if len(grads_into) != 2:
            return None
        grad_ih, grad_hh = grads_into
        if not (_plain(grad_ih, (G, I)) and _plain(grad_hh, (G, H))):
            return None
        if not (grad_ih.flags.writeable and grad_hh.flags.writeable):
            return None
        weight_ih, weight_hh = cache.weight_ih, cache.weight_hh
        if not self._current(weight_ih, weight_hh):
            return None
        small = weight_hh.nbytes < SPLIT_PACK_BYTES  # then packed inside the entry
        panels = _NOT_PACKED if small else packed(weight_hh, False, False)
        dh = np.zeros((B, H), _F32)
        dc = np.zeros((B, H), _F32)
        dh_step = np.empty((B, H), _F32)
        dh_rec = np.empty((B, H), _F32)
        dbias = np.empty(G, _F32)
        dx = np.empty((T, B, I), _F32) if need_dx else None
        lengths = steps_per_sequence(None, T, B)
        one_part_backward(
            path.pipelined(T), dy, gates, cache.c_state, cache.tanh_c, weight_hh, panels,
            dgates, dh, dc, dh_step, dh_rec, lengths, False, path.tiled, cache.x.reshape(T * B, I),
            cache.h_state[:T].reshape(T * B, H), weight_ih, need_dx,
            (dx if need_dx else dgates).reshape(T * B, -1), grad_ih, grad_hh, dbias, True,
            path.pass_rows(T),
        )  # fmt: skip
        return functional.LSTMGrads(dx, grad_ih, grad_hh, dbias, None, dh, dc)


def plan_training(weight_ih: object, weight_hh: object, batch: int) -> TrainingPlan | None:
    """The plan of a float32 direction without projection whose ``weight_ih (4H, I)``
    and ``weight_hh (4H, H)`` are these arrays at batch ``batch``, made and cached on
    first use (its ``path`` ``None`` where :func:`~kioku.kernels._path.choose_path` does
    not run such a step on one thread whatever the budget, with the packed projection
    over all steps); ``None`` for arrays no plan can hold (not float32 C-contiguous
    matrices of those shapes)."""
    if type(weight_ih) is not np.ndarray or type(weight_hh) is not np.ndarray:
        return None
    if weight_ih.ndim != 2 or weight_hh.ndim != 2:
        return None
    if not (_plain(weight_ih, weight_ih.shape) and _plain(weight_hh, weight_hh.shape)):
        return None
    G, H = weight_hh.shape
    I = weight_ih.shape[1]
    if G != 4 * H or weight_ih.shape[0] != G or H == 0 or I == 0:
        return None
    path = _path.choose_path(  # 2 steps: the split by units is for calls of 2 steps on
        2, batch, I, H, 0, _F32, keep_cache=True, all_valid=True,
        weight_bytes=weight_ih.nbytes + weight_hh.nbytes, recurrent_bytes=weight_hh.nbytes,
    )  # fmt: skip
    if not (path.budget_free and path.parts == 1 and not path.fused and path.packed_ih):
        path = None
    plan = TrainingPlan(weight_ih, weight_hh, batch, path)
    longer = _path.choose_path(  # calls from MIN_STEPS on may take MKL's products instead
        _mkl_units.MIN_STEPS, batch, I, H, 0, _F32, keep_cache=True, all_valid=True,
        weight_bytes=weight_ih.nbytes + weight_hh.nbytes, recurrent_bytes=weight_hh.nbytes,
    )  # fmt: skip
    if longer.mkl_rows:  # the plan holds kioku's own loops: it keeps the shorter calls
        plan.solo_steps = min(plan.solo_steps, _mkl_units.MIN_STEPS - 1)
    _plans[(id(weight_ih), id(weight_hh), batch)] = plan
    return plan


def _plan_of(weight_ih: object, weight_hh: object, batch: int) -> TrainingPlan | None:
    plan = _plans.get((id(weight_ih), id(weight_hh), batch))
    return plan_training(weight_ih, weight_hh, batch) if plan is None else plan


def planned_forward(
    x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray | None,
    h0: object, c0: object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, functional.LSTMCache] | None:  # fmt: skip
    """The planned forward of ``x (T, B, I)`` (an ndarray of three axes) keeping its
    cache, planning these weights at this batch on first use; ``None`` where no plan
    covers the call."""
    plan = _plan_of(weight_ih, weight_hh, x.shape[1])
    return None if plan is None else plan.forward(x, weight_ih, weight_hh, bias, h0, c0)


def planned_backward(
    dy: object, cache: functional.LSTMCache, need_dx: bool, grads_into: object,
    dgates: object,
) -> functional.LSTMGrads | None:  # fmt: skip
    """The planned backward of a plain (no projection, no lengths, forward direction)
    ``cache``; ``None`` where no plan covers the call."""
    plan = _plans.get((id(cache.weight_ih), id(cache.weight_hh), cache.gates.shape[1]))
    return None if plan is None else plan.backward(dy, cache, need_dx, grads_into, dgates)


def forget_all() -> None:
    """Drop every plan (tests; a change of the rules :func:`choose_path` reads)."""
    _plans.clear()
