"""The GRU of :mod:`kioku.functional.gru` with compiled time loops (the ``numba`` backend).

Same signatures, same :class:`~kioku.functional.GRUCache` (every field filled the way
the reference fills it), same results to rounding (float32 uses the rational tanh of
:mod:`kioku.kernels._primitives`, absolute error below 4e-7). The input projection of
all steps is one GEMM before the loop and the weight gradients are GEMMs after it;
inside the loop each step is one recurrent GEMM (two without ``reset_after``: the reset
gate must act on ``h`` before ``W_hn``) straight into a buffer allocated once, then one
fused pass over the batch. Calls the loops do not cover fall back to the reference:
mixed or non-float dtypes, and backward calls that ask for ``dh_trace``.
"""

from __future__ import annotations

import numpy as np

from .. import functional
from ..functional import GRUCache, GRUGrads, length_mask
from ..functional.gru import input_bias
from ._contract import check_shape, compiled_dtype, steps_per_sequence
from ._jit import njit
from ._primitives import (
    FAST_MATH,
    L2_BYTES,
    SMALL_ROWS,
    emit_step,
    fast_sigmoid,
    fast_tanh,
    step_gemm,
)
from ._threads import batch_slices, in_phases

__all__ = ["gru_backward", "gru_forward"]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def gru_forward_loop(
    gates, w_main, w_main_t, w_n, w_n_t, b_hn, h_state, recurrent_n, rec, rec_n, y,
    lengths, reverse, reset_after, b0, b1, tiled, lean,
):  # fmt: skip
    """Run the recurrence in place on rows ``b0:b1``. ``gates (T, B, 3H)`` holds the input
    projection plus :func:`~kioku.functional.gru.input_bias` on entry and the activated
    r, z, n on exit. ``reset_after``: ``w_main`` is ``weight_hh (3H, H)``, ``rec (B, 3H)``
    scratch, ``b_hn (H,)`` (zeros without bias); otherwise ``w_main`` is the r, z rows
    ``(2H, H)``, ``rec (B, 2H)``, ``w_n (H, H)`` the n rows and ``rec_n (B, H)`` scratch.
    ``*_t`` are C-contiguous transposes (dummies where :func:`step_gemm` does not read
    them). Fills ``h_state (T+1, B, H)`` from slot ``T * reverse``, ``recurrent_n`` and
    ``y (T, B, H)``; ``lean`` (inference): ``h_state (2, B, H)`` from slot 0, its two slots
    trading roles every step, and ``recurrent_n (1, B, H)`` one step's scratch."""
    T, _, G = gates.shape
    H = G // 3
    r = 1 if reverse else 0
    for s in range(T):
        t = T - 1 - s if reverse else s
        if lean:
            h_prev, h_next, rn_t = h_state[s % 2], h_state[1 - s % 2], recurrent_n[0]
        else:
            h_prev, h_next, rn_t = h_state[t + r], h_state[t + 1 - r], recurrent_n[t]
        a = gates[t]
        step_gemm(h_prev[b0:b1], w_main, w_main_t, rec[b0:b1], 0.0, tiled)
        if reset_after:
            for b in range(b0, b1):
                row, rc, hp, hn, u = a[b], rec[b], h_prev[b], rn_t[b], h_next[b]
                for j in range(H):
                    reset = fast_sigmoid(row[j] + rc[j])
                    update = fast_sigmoid(row[H + j] + rc[H + j])
                    linear = rc[2 * H + j] + b_hn[j]
                    new = fast_tanh(row[2 * H + j] + reset * linear)
                    row[j], row[H + j], row[2 * H + j] = reset, update, new
                    hn[j] = linear
                    u[j] = new + update * (hp[j] - new)
        else:
            for b in range(b0, b1):
                row, rc, hp, rh = a[b], rec[b], h_prev[b], rn_t[b]
                for j in range(H):
                    reset = fast_sigmoid(row[j] + rc[j])
                    row[j] = reset
                    row[H + j] = fast_sigmoid(row[H + j] + rc[H + j])
                    rh[j] = reset * hp[j]
            step_gemm(rn_t[b0:b1], w_n, w_n_t, rec_n[b0:b1], 0.0, tiled)
            for b in range(b0, b1):
                row, rn, hp, u = a[b], rec_n[b], h_prev[b], h_next[b]
                for j in range(H):
                    new = fast_tanh(row[2 * H + j] + rn[j])
                    row[2 * H + j] = new
                    u[j] = new + row[H + j] * (hp[j] - new)
        emit_step(y[t], h_next, h_prev, lengths, t, b0, b1)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST_MATH)
def gru_backward_loop(
    dy, gates, h_state, recurrent_n, w_main, w_main_t, w_n, w_n_t, d_input, d_recurrent,
    dh, dh_step, direct, dh_rec, d_rz, d_new, d_rh, lengths, reverse, reset_after, b0, b1,
    tiled,
):  # fmt: skip
    """Backprop through time in place on rows ``b0:b1``. Writes ``d_input`` and
    ``d_recurrent (T, B, 3H)``, the gradients of the input and recurrent projections
    (zero at masked steps); ``dh (B, H)`` holds dL/dh_n on entry and dL/dh0 on exit.
    ``w_main``/``w_n`` as in :func:`gru_forward_loop`, here with ``w_*_t`` their
    transposes read as ``(N, K)``; ``dh_step``, ``direct``, ``dh_rec``, ``d_new``,
    ``d_rh (B, H)`` and ``d_rz (B, 2H)`` are scratch."""
    T, _, G = gates.shape
    H = G // 3
    r = 1 if reverse else 0
    one = dy.dtype.type(1)
    zero = dy.dtype.type(0)
    for s in range(T):
        t = s if reverse else T - 1 - s
        h_prev = h_state[t + r]
        for b in range(b0, b1):
            valid = t < lengths[b]
            di, dr = d_input[t, b], d_recurrent[t, b]
            if not valid:  # a finished sequence passes its gradient through
                for k in range(G):
                    di[k] = zero
                    dr[k] = zero
                for j in range(H):
                    d_new[b, j] = zero
                    d_rz[b, j] = zero
                    d_rz[b, H + j] = zero
                continue
            row, hp, hn = gates[t, b], h_prev[b], recurrent_n[t, b]
            for j in range(H):
                g = dh[b, j] + dy[t, b, j]
                dh_step[b, j] = g
                reset, update, new = row[j], row[H + j], row[2 * H + j]
                du = g * (hp[j] - new) * update * (one - update)  # h' = n + z (h - n)
                dn = g * (one - update) * (one - new * new)  # n = tanh(...)
                direct[b, j] = g * update
                di[H + j] = du
                di[2 * H + j] = dn
                dr[H + j] = du
                if reset_after:  # ... + r * (h W_hn + b_hn)
                    drs = dn * hn[j] * reset * (one - reset)
                    di[j] = drs
                    dr[j] = drs
                    dr[2 * H + j] = dn * reset
                else:  # ... + (r * h) W_hn + b_hn
                    dr[2 * H + j] = dn
                    d_new[b, j] = dn
                    d_rz[b, H + j] = du
        if reset_after:
            step_gemm(d_recurrent[t, b0:b1], w_main_t, w_main, dh_rec[b0:b1], 0.0, tiled)
        else:
            step_gemm(d_new[b0:b1], w_n_t, w_n, d_rh[b0:b1], 0.0, tiled)
            for b in range(b0, b1):
                if t >= lengths[b]:
                    continue
                row, hp, di, dr = gates[t, b], h_prev[b], d_input[t, b], d_recurrent[t, b]
                for j in range(H):
                    reset = row[j]
                    drs = d_rh[b, j] * hp[j] * reset * (one - reset)
                    di[j] = drs
                    dr[j] = drs
                    d_rz[b, j] = drs
                    direct[b, j] += d_rh[b, j] * reset
            step_gemm(d_rz[b0:b1], w_main_t, w_main, dh_rec[b0:b1], 0.0, tiled)
        for b in range(b0, b1):
            if t < lengths[b]:
                for j in range(H):
                    dh[b, j] = dh_rec[b, j] + direct[b, j]


def _recurrent_weights(weight_hh: np.ndarray, reset_after: bool, transposes: bool):
    """``(w_main, w_main_t, w_n, w_n_t)``: the rows of ``weight_hh`` each step multiplies
    (all of them, or r, z and then n without ``reset_after``), C-contiguous, and their
    C-contiguous transposes when ``transposes`` (else the same arrays, as dummies that
    :func:`step_gemm` does not read)."""
    H = weight_hh.shape[1]
    main = np.ascontiguousarray(weight_hh if reset_after else weight_hh[: 2 * H])
    w_n = main if reset_after else np.ascontiguousarray(weight_hh[2 * H :])
    if not transposes:
        return main, main, w_n, w_n
    main_t = np.ascontiguousarray(main.T)
    return main, main_t, w_n, main_t if reset_after else np.ascontiguousarray(w_n.T)


def gru_forward(
    x: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None, bias_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None, lengths: np.ndarray | None = None, reverse: bool = False,
    reset_after: bool = True, keep_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, GRUCache | None]:  # fmt: skip
    """Run one GRU direction over ``x (T, B, I)``: see :func:`kioku.functional.gru_forward`.

    ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih``/``bias_hh (3H,)``,
    ``h0 (B, H)``, ``lengths (B,)``. Returns ``y (T, B, H)``, ``h_n (B, H)`` and the cache;
    with ``keep_cache=False`` ``None`` in its place and a loop on two state slots.
    """
    dtype = compiled_dtype(x, weight_ih, weight_hh, bias_ih, bias_hh, h0)
    if dtype is None or x.ndim != 3:
        return functional.gru_forward(
            x, weight_ih, weight_hh, bias_ih, bias_hh, h0, lengths, reverse, reset_after,
            keep_cache,
        )  # fmt: skip
    T, B, I = x.shape
    H = weight_hh.shape[1]
    for name, array, shape in (
        ("weight_ih", weight_ih, (3 * H, I)),
        ("weight_hh", weight_hh, (3 * H, H)),
        ("bias_ih", bias_ih, (3 * H,)),
        ("bias_hh", bias_hh, (3 * H,)),
        ("h0", h0, (B, H)),
    ):
        check_shape(name, array, shape)
    mask = length_mask(lengths, T, B)
    slices = batch_slices(B, 6.0 * B * H * H)
    small = max(rows.stop - rows.start for rows in slices) <= SMALL_ROWS
    tiled = weight_hh.nbytes > L2_BYTES
    # the forward reads (N, K) = W in the loops and (K, N) = W^T through BLAS
    transposes = not (small or tiled)
    w_main, w_main_t, w_n, w_n_t = _recurrent_weights(weight_hh, reset_after, transposes)

    x2 = np.ascontiguousarray(x).reshape(T * B, I)
    gates = np.empty((T, B, 3 * H), dtype)
    gates2 = gates.reshape(T * B, 3 * H)
    folded = input_bias(bias_ih, bias_hh, reset_after, H)
    b_hn = np.zeros(H, dtype)
    if reset_after and bias_hh is not None:
        b_hn[:] = bias_hh[2 * H :]
    r = int(bool(reverse))
    h_state = np.empty((T + 1 if keep_cache else 2, B, H), dtype)
    h_state[T * r if keep_cache else 0] = 0 if h0 is None else h0
    recurrent_n = np.empty((T if keep_cache else 1, B, H), dtype)
    rec = np.empty((B, 3 * H if reset_after else 2 * H), dtype)
    rec_n = np.empty((B, H), dtype)
    y = np.empty((T, B, H), dtype)
    steps = steps_per_sequence(mask, T, B)

    parts = len(slices)

    def project(part: int) -> None:
        r0, r1 = (T * B) * part // parts, (T * B) * (part + 1) // parts
        np.matmul(x2[r0:r1], weight_ih.T, out=gates2[r0:r1])
        if folded is not None:
            gates2[r0:r1] += folded

    def loop(part: int) -> None:
        rows = slices[part]
        gru_forward_loop(
            gates, w_main, w_main_t, w_n, w_n_t, b_hn, h_state, recurrent_n, rec, rec_n, y,
            steps, bool(reverse), bool(reset_after), rows.start, rows.stop, tiled,
            not keep_cache,
        )  # fmt: skip

    in_phases(parts, project, loop)
    h_n = h_state[T * (1 - r) if keep_cache else T % 2].copy()  # lean: slots trade roles
    if not keep_cache:
        return y, h_n, None
    fields = (x, weight_ih, weight_hh, gates, h_state, recurrent_n, mask, bool(reverse))
    return y, h_n, GRUCache(*fields, reset_after)


def gru_backward(
    dy: np.ndarray, cache: GRUCache, dh_n: np.ndarray | None = None, need_dx: bool = True,
    dh_trace: np.ndarray | None = None,
) -> GRUGrads:  # fmt: skip
    """Backprop through time for one direction: see :func:`kioku.functional.gru_backward`.

    ``dy (T, B, H)``, ``dh_n (B, H)``; returns :class:`GRUGrads` (``dx (T, B, I)``,
    ``dweight_ih (3H, I)``, ``dweight_hh (3H, H)``, ``dbias_ih``/``dbias_hh (3H,)``,
    ``dh0 (B, H)``). Calls with ``dh_trace`` run the reference.
    """
    x = cache.x
    dtype = compiled_dtype(x, dy, cache.gates)
    if dtype is None or dh_trace is not None:
        return functional.gru_backward(dy, cache, dh_n, need_dx, dh_trace)
    T, B, I = x.shape
    H = cache.h_state.shape[2]
    dh = np.zeros((B, H), dtype) if dh_n is None else np.array(dh_n, dtype)
    check_shape("dy", dy, (T, B, H))
    dy = np.ascontiguousarray(dy)
    check_shape("dh_n", dh, (B, H))
    slices = batch_slices(B, 6.0 * B * H * H)
    small = max(rows.stop - rows.start for rows in slices) <= SMALL_ROWS
    tiled = cache.weight_hh.nbytes > L2_BYTES
    # the backward multiplies by W, not W^T: (N, K) = W^T in the loops, (K, N) = W in BLAS
    weights = _recurrent_weights(cache.weight_hh, cache.reset_after, small or tiled)
    w_main, w_main_t, w_n, w_n_t = weights
    d_input = np.empty_like(cache.gates)
    d_recurrent = np.empty_like(cache.gates)
    dh_step, direct, dh_rec, d_new, d_rh = (np.empty((B, H), dtype) for _ in range(5))
    d_rz = np.empty((B, 2 * H), dtype)
    steps = steps_per_sequence(cache.mask, T, B)

    def loop(part: int) -> None:
        rows = slices[part]
        gru_backward_loop(
            dy, cache.gates, cache.h_state, cache.recurrent_n, w_main, w_main_t, w_n, w_n_t,
            d_input, d_recurrent, dh, dh_step, direct, dh_rec, d_rz, d_new, d_rh, steps,
            cache.reverse, cache.reset_after, rows.start, rows.stop, tiled,
        )  # fmt: skip

    grads = {}

    def finish(part: int) -> None:
        if part:  # the GEMMs after the loop run on one thread
            return
        flat_in = d_input.reshape(T * B, 3 * H)
        flat_rec = d_recurrent.reshape(T * B, 3 * H)
        grads["dx"] = (flat_in @ cache.weight_ih).reshape(T, B, I) if need_dx else None
        grads["dweight_ih"] = flat_in.T @ x.reshape(T * B, I)
        h_in = cache.h_in.reshape(T * B, H)
        if cache.reset_after:
            grads["dweight_hh"] = flat_rec.T @ h_in
        else:
            dweight_hh = grads["dweight_hh"] = np.empty((3 * H, H), dtype)
            dweight_hh[: 2 * H] = flat_rec[:, : 2 * H].T @ h_in
            dweight_hh[2 * H :] = flat_rec[:, 2 * H :].T @ cache.recurrent_n.reshape(T * B, H)

    in_phases(len(slices), loop, finish)
    # float64 sums: no drift over T * B rows
    dbias_ih = d_input.reshape(T * B, 3 * H).sum(axis=0, dtype=np.float64).astype(dtype)
    dbias_hh = d_recurrent.reshape(T * B, 3 * H).sum(axis=0, dtype=np.float64).astype(dtype)
    return GRUGrads(grads["dx"], grads["dweight_ih"], grads["dweight_hh"], dbias_ih, dbias_hh, dh)
