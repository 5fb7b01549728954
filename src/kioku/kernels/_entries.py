"""One compiled entry for a whole LSTM call on one thread (batch 1, small shapes).

Each Numba dispatch from Python costs a few microseconds (more with many arguments);
at batch 1 a call's compiled work is tens of microseconds, so the input projection and
the loop of an inference call, and the loop and the weight gradients of a backward, run
from one entry here instead of one dispatch each. Arguments as in :mod:`._lstm_loops`.
"""

from __future__ import annotations

from numba import njit

from ._lstm_loops import (
    lstm_backward_loop,
    lstm_infer_loop,
    packed_weight_gradients,
    project_inputs,
)

# Numba's disk cache keys each function on its own file's timestamp only: the loops
# compiled into these entries come from _lstm_loops.py, whose fingerprint lives here
# (checked by tests/test_kernels.py), so editing it changes this file too.
LOOPS_SHA256 = "9e73f120f7797c29"


@njit(cache=True, nogil=True)
def _project(x2, weight_ih, bias, has_bias, packed_ih, gates, panels_ih, fused):
    """:func:`project_inputs` of all rows into ``gates (T, B, 4H)``, unless ``fused``."""
    if not fused:
        T, B, G = gates.shape
        gates2 = gates.reshape(T * B, G)
        project_inputs(x2, weight_ih, bias, has_bias, gates2, 0, 1, panels_ih, packed_ih)


@njit(cache=True, nogil=True)
def infer_one_part(
    x2, weight_ih, bias, has_bias, packed_ih, gates, weight_hh, weight_hh_t, panels, weight_hr,
    weight_hr_t, h_a, h_b, c, unprojected, y, lengths, reverse, project, direct, tiled, packed,
    x, panels_ih, step_bias, fused,
):  # fmt: skip
    """An inference call: the projection, then :func:`lstm_infer_loop` over the whole
    batch. Flat arguments: passing them as two tuples cost the dispatch 0.7 µs more
    (and a training step about 12 µs more), in alternating processes."""
    _project(x2, weight_ih, bias, has_bias, packed_ih, gates, panels_ih, fused)
    lstm_infer_loop(
        gates, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, h_a, h_b, c, unprojected,
        y, lengths, reverse, project, direct, 0, y.shape[1], tiled, packed, x, panels_ih,
        step_bias, fused,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def packed_backward_one_part(
    dy, gates, c_state, tanh_c, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t, dgates,
    dh, dc, dh_out, dh_step, d_hidden, dh_rec, lengths, reverse, tiled, x2, h_in2, weight_ih,
    need_dx, dx2, dw_ih, dw_hh, dbias, accumulate,
):  # fmt: skip
    """A float32 backward without projection on one thread in one compiled entry (one
    dispatch at batch 1): :func:`lstm_backward_loop` over the whole batch on the packed
    ``panels``, then :func:`packed_weight_gradients`; arguments as there."""
    lstm_backward_loop(
        dy, gates, c_state, tanh_c, weight_hh, weight_hh_t, panels, weight_hr, weight_hr_t,
        dgates, dh, dc, dh_out, dh_step, d_hidden, dh_rec, lengths, reverse, False, 0,
        dy.shape[1], tiled, True,
    )  # fmt: skip
    T, B, G = dgates.shape
    packed_weight_gradients(
        dgates.reshape(T * B, G), x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias,
        accumulate, 0, 1,
    )  # fmt: skip
