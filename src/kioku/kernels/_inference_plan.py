"""A float32 LSTM direction's inference of one sequence planned once per pair of weight
arrays, then run as one compiled call (``_entries.infer_sequence``) while those arrays
live and the weights epoch has not moved.

At batch 1 a call's arithmetic takes microseconds, and what
:func:`~kioku.kernels.numba_lstm.lstm_forward` decides around it (:func:`._path.choose_path`,
whether the packed weights are current, which buffers) costs as much again. The plan
takes those decisions once for the weights ``(weight_ih, weight_hh)``: it is cached here,
keyed on the two arrays (their identity, held by weak references, so a dropped layer
drops its plan) and checked against the weights epoch (:mod:`._weights_epoch`; kioku's
own writes move it, and the plan then fetches the packed copies afresh).
:func:`planned` checks, each in nanoseconds, only what can change between calls: the
input's type, dtype, shape and layout, the bias's and the state's. Anything else
returns ``None``, and ``lstm_forward`` takes its general path.

The compiled call is the one the general path makes for the same call (its
``one_sequence`` path), with arguments of the same types: the same results bit for bit,
and no compilation of its own. One sequence never splits across threads, so the thread
budget is not read.

Thread safety: a plan holds no scratch (the compiled call allocates its own), so one
layer may be called from several threads at once; its kept packed weights are shared as
:mod:`._pack_cache` shares them.
"""

from __future__ import annotations

import weakref

import numpy as np

from . import _path, _weights_epoch
from ._entries import HAS_BIAS, HAS_STATE, REVERSE, infer_sequence
from ._pack_cache import NOT_KEPT, kept

_F32 = np.dtype(np.float32)

# (id(weight_ih), id(weight_hh)) -> plan; an entry leaves when either array dies
_plans: dict[tuple[int, int], InferencePlan] = {}


def _plain(array: object, ndim: int) -> bool:
    """A C-contiguous float32 ndarray (not a subclass) of ``ndim`` axes."""
    return (
        type(array) is np.ndarray
        and array.dtype == _F32
        and array.ndim == ndim
        and array.flags.c_contiguous
    )


class InferencePlan:
    """The one-sequence inference of one pair of weight arrays: see the module docstring."""

    __slots__ = ("refs", "features", "hidden", "shapes", "max_steps", "epoch", "packs", "zero",
                 "no_state", "__weakref__")  # fmt: skip

    def __init__(self, weight_ih: np.ndarray, weight_hh: np.ndarray, max_steps: int) -> None:
        key = (id(weight_ih), id(weight_hh))

        def forget(_: object, key: tuple[int, int] = key) -> None:
            _plans.pop(key, None)

        self.refs = (weakref.ref(weight_ih, forget), weakref.ref(weight_hh, forget))
        self.features = weight_ih.shape[1]
        self.hidden = weight_hh.shape[1]
        # weights, bias, state
        self.shapes = (weight_ih.shape, weight_hh.shape, (weight_hh.shape[0],), (1, self.hidden))
        self.max_steps = max_steps
        self.epoch = _weights_epoch._epoch
        self.packs = kept(weight_ih, True) + kept(weight_hh, True)
        self.zero = np.zeros(weight_hh.shape[0], _F32)  # b + 0 is b, as the general path
        self.no_state = np.empty((1, 0, 0), _F32)  # typed as a state, never read

    def run(
        self, x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
        bias: np.ndarray | None, h0: object, c0: object, reverse: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, None] | None:  # fmt: skip
        """``lstm_forward``'s result ``(y (T, 1, H), h_n (1, H), c_n (1, H), None)`` for
        ``x (T, 1, I)``, ``bias (4H,)`` or ``None``, ``h0``/``c0`` ``(1, H)`` or
        ``None``; ``None`` when anything differs from what the plan covers."""
        if x.dtype != _F32 or not x.flags.c_contiguous:
            return None
        steps, _, features = x.shape
        if features != self.features or steps == 0 or steps > self.max_steps:
            return None
        ref_ih, ref_hh = self.refs
        if ref_ih() is not weight_ih or ref_hh() is not weight_hh:
            return None
        shape_ih, shape_hh, shape_bias, shape_state = self.shapes
        if weight_ih.shape != shape_ih or weight_hh.shape != shape_hh:
            return None  # reshaped in place since planning
        if _weights_epoch._epoch != self.epoch:  # written by kioku: the packs afresh
            self.packs = kept(weight_ih, True) + kept(weight_hh, True)
            self.epoch = _weights_epoch._epoch
        flags = REVERSE if reverse else 0
        if bias is None:
            bias = zero = NOT_KEPT[1]  # typed as a bias, not read
        elif (
            type(bias) is np.ndarray and bias.dtype == _F32 and bias.shape == shape_bias
            and bias.flags.c_contiguous
        ):  # fmt: skip
            zero = self.zero
            flags |= HAS_BIAS
        else:
            return None
        if h0 is None and c0 is None:
            h0 = c0 = self.no_state
        elif _plain(h0, 2) and _plain(c0, 2) and h0.shape == c0.shape == shape_state:
            h0, c0 = h0[None], c0[None]
            flags |= HAS_STATE
        else:
            return None
        H = self.hidden
        y = np.empty((steps, 1, H), _F32)
        h_n = np.empty((1, 1, H), _F32)
        c_n = np.empty((1, 1, H), _F32)
        if infer_sequence(x, weight_ih, weight_hh, bias, zero, h0, c0, y, h_n, c_n, *self.packs,
                          flags):  # fmt: skip
            return None
        return y, h_n[0], c_n[0], None


def plan_inference(weight_ih: object, weight_hh: object, steps: int) -> InferencePlan | None:
    """A plan for a float32 direction without projection whose ``weight_ih (4H, I)`` and
    ``weight_hh (4H, H)`` are these arrays, made and cached when
    :func:`~kioku.kernels._path.choose_path` sends a one-sequence call of ``steps`` steps
    to one ``infer_sequence`` call; ``None`` otherwise."""
    if not (_plain(weight_ih, 2) and _plain(weight_hh, 2)):
        return None
    G, H = weight_hh.shape
    if G != 4 * H or weight_ih.shape[0] != G or H == 0:
        return None
    path = _path.choose_path(  # at least 2 steps: the rules for longer calls hold too
        max(steps, 2), 1, weight_ih.shape[1], H, 0, _F32, keep_cache=False, all_valid=True,
        weight_bytes=weight_ih.nbytes + weight_hh.nbytes, recurrent_bytes=weight_hh.nbytes,
    )  # fmt: skip
    if not path.one_sequence:
        return None
    plan = InferencePlan(weight_ih, weight_hh, path.max_steps)
    _plans[(id(weight_ih), id(weight_hh))] = plan
    return plan


def planned(
    x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray | None,
    h0: object, c0: object, reverse: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, None] | None:  # fmt: skip
    """The planned inference of one sequence ``x (T, 1, I)`` (an ndarray of three axes),
    planning these weights on first use; ``None`` where no plan covers the call."""
    plan = _plans.get((id(weight_ih), id(weight_hh)))
    if plan is None:
        plan = plan_inference(weight_ih, weight_hh, x.shape[0])
        if plan is None:
            return None
    return plan.run(x, weight_ih, weight_hh, bias, h0, c0, reverse)


def forget_all() -> None:
    """Drop every plan (tests; a change of the rules :func:`choose_path` reads)."""
    _plans.clear()
