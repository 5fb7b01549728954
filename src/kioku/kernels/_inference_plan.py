"""A float32 LSTM layer's inference of one sequence planned once, then run as one
compiled call (``_entries.infer_sequence``) while nothing it was planned on has changed.

At batch 1 a call's arithmetic takes microseconds, and everything
:func:`~kioku.kernels.numba_lstm.lstm_forward` decides around it (which path, whether
the packed weights are current, which buffers) and the layer's own checks cost as much
again on every call. An :class:`InferencePlan` takes those decisions once, for the
layer's weights, and :meth:`InferencePlan.run` then checks, each in nanoseconds, only
what can change between calls: the input's type, dtype, shape and layout, the state's,
that the layer still holds the same weight arrays, and the weights epoch
(:mod:`._weights_epoch`; kioku's own writes move it). The kept packed weights are
:mod:`._pack_cache`'s, checked inside the compiled call as that module checks them.
Anything else returns ``None``, and the caller takes the general path.

The compiled call is the one :func:`~kioku.kernels.numba_lstm.lstm_forward` makes for
the same call, with arguments of the same types: the same results bit for bit, and no
compilation of its own. Only the calls it makes that way are planned (batch 1, no
projection, the projection on the packed kernel); one sequence never splits across
threads, so the thread budget is not read.

Thread safety: a plan holds no scratch (the compiled call allocates its own), so one
layer may be called from several threads at once; its kept packed weights are shared
as :mod:`._pack_cache` shares them.
"""

from __future__ import annotations

import numpy as np

from . import _weights_epoch, numba_lstm
from ._entries import HAS_BIAS, HAS_STATE, infer_sequence
from ._pack_cache import NOT_KEPT, kept

_F32 = np.dtype(np.float32)


def _plain(array: object, ndim: int) -> bool:
    return (
        type(array) is np.ndarray
        and array.dtype == _F32
        and array.ndim == ndim
        and array.flags.c_contiguous
    )


class InferencePlan:
    """One layer's inference of one sequence: see the module docstring. ``batch`` is 1."""

    __slots__ = ("names", "weights", "batch", "features", "state_shape", "max_steps", "epoch",
                 "flags", "packs", "no_state")  # fmt: skip

    def __init__(self, names: tuple[str, ...], weights: tuple) -> None:
        weight_ih, weight_hh, bias_ih, _ = weights
        self.names, self.weights, self.batch = names, weights, 1
        self.features = weight_ih.shape[1]
        self.state_shape = (1, 1, weight_hh.shape[1])
        self.max_steps = numba_lstm.PACKED_PROJECTION_ROWS
        self.epoch = _weights_epoch._epoch
        self.flags = HAS_BIAS if bias_ih is not None else 0
        self.packs = kept(weight_ih, True) + kept(weight_hh, True)
        self.no_state = np.empty((1, 0, 0), np.float32)  # typed as a state, never read

    def run(
        self, params: dict[str, np.ndarray], x: object, state: object
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
        """``y (T, 1, H), (h_n (1, 1, H), c_n (1, 1, H))`` for ``x (T, 1, I)`` and
        ``state`` (``None`` or a tuple ``(h0 (1, 1, H), c0 (1, 1, H))``), or ``None`` when
        anything differs from what the plan was made for (the general path then runs)."""
        if type(x) is not np.ndarray or x.dtype != _F32 or x.ndim != 3:
            return None
        steps, batch, features = x.shape
        if batch != 1 or features != self.features or not x.flags.c_contiguous:
            return None
        if steps == 0 or steps > self.max_steps or _weights_epoch._epoch != self.epoch:
            return None
        weight_ih, weight_hh, bias_ih, bias_hh = self.weights
        n_ih, n_hh, n_bih, n_bhh = self.names
        get = params.get
        if get(n_ih) is not weight_ih or get(n_hh) is not weight_hh:
            return None
        flags = self.flags
        if flags & HAS_BIAS:
            if get(n_bih) is not bias_ih or get(n_bhh) is not bias_hh:
                return None
        else:
            bias_ih = bias_hh = NOT_KEPT[1]  # typed as a bias, not read
        shape = self.state_shape
        if state is None:
            h0 = c0 = self.no_state
        else:
            if type(state) is not tuple or len(state) != 2:
                return None
            h0, c0 = state
            if not (_plain(h0, 3) and _plain(c0, 3) and h0.shape == shape and c0.shape == shape):
                return None
            flags |= HAS_STATE
        y = np.empty((steps, 1, shape[2]), _F32)
        h_n = np.empty(shape, _F32)
        c_n = np.empty(shape, _F32)
        if infer_sequence(
            x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0, y, h_n, c_n, *self.packs, flags
        ):
            return None
        return y, (h_n, c_n)


def plan_inference(
    names: tuple[str, str, str, str], params: dict[str, np.ndarray], batch: int
) -> InferencePlan | None:
    """A plan for a float32 layer without projection whose ``weight_ih (4H, I)``,
    ``weight_hh (4H, H)`` and (``bias_ih``, ``bias_hh`` (4H,), or neither) are
    ``params[name]`` for ``names``, at batch ``batch``; ``None`` where
    :func:`~kioku.kernels.numba_lstm.lstm_forward` would not run such a call as one
    ``infer_sequence`` call (any batch but 1, among others)."""
    weight_ih, weight_hh = params.get(names[0]), params.get(names[1])
    bias_ih, bias_hh = params.get(names[2]), params.get(names[3])
    if batch != 1 or not (_plain(weight_ih, 2) and _plain(weight_hh, 2)):
        return None
    G, H = weight_hh.shape
    if G != 4 * H or weight_ih.shape[0] != G:
        return None
    if (bias_ih is None) != (bias_hh is None):
        return None
    if bias_ih is not None:
        if not (_plain(bias_ih, 1) and _plain(bias_hh, 1)):
            return None
        if bias_ih.shape != (G,) or bias_hh.shape != (G,):
            return None
    # lstm_forward's rule: one step's own projection (fused) never runs at batch 1 there
    fused = (
        1 >= numba_lstm.FUSED_MIN_ROWS
        and weight_ih.nbytes + weight_hh.nbytes <= numba_lstm.FUSED_MAX_BYTES
    )
    return None if fused else InferencePlan(names, (weight_ih, weight_hh, bias_ih, bias_hh))
