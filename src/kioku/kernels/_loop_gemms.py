"""The GEMMs around one LSTM direction's time loops (:mod:`._lstm_loops`): the input
projection of every step before the loop, and after the backward loop the weight
gradients, the input gradient and the bias gradient, each over all ``T * B`` rows at
once. Each call does one share of the rows or columns, so threads can split it; BLAS
(single-threaded per part) or, for float32, the packed kernel of :mod:`._packed`.
"""

from __future__ import annotations

import numpy as np

from ._aligned import aligned_panels
from ._jit import njit
from ._packed import LANES, MR, NR, _transpose_block, pack_panels, packed_gemm
from ._primitives import gemm


@njit(cache=True, nogil=True)
def _share(size, part, parts):
    return size * part // parts, size * (part + 1) // parts


@njit(cache=True, nogil=True)
def add_rows(a, total):
    """``total (C,) += a (R, C)`` summed row by row in order (float64 ``total``: no drift
    over ``R``). Indices from zero on slices: LLVM sees them non-negative and vectorises
    the loop over columns (``total[g - g0]`` over a range from ``g0`` kept it scalar)."""
    for n in range(a.shape[0]):
        row = a[n]
        for j in range(a.shape[1]):
            total[j] += row[j]


@njit(cache=True, nogil=True)
def project_inputs(x2, weight_ih, gates2, part, parts, panels_ih, packed):
    """``gates2 (N, 4H) = x2 (N, I) @ weight_ih (4H, I).T``: the input projection of
    every step as one GEMM (the loops add the bias in their gate pass); this call does
    share ``part`` of ``parts`` (rows of ``N``), so threads can split it. With ``packed``
    (float32) the packed kernel reads ``panels_ih``, ``weight_ih.T`` packed by
    :func:`kioku.kernels._packed.pack_panels`; otherwise BLAS reads ``weight_ih``."""
    r0, r1 = _share(gates2.shape[0], part, parts)
    if r1 <= r0:
        return
    if packed:
        tile = np.empty((MR, NR), gates2.dtype)
        packed_gemm(x2[r0:r1], panels_ih, gates2[r0:r1], 0.0, tile)
    else:
        gemm(False, True, x2[r0:r1], weight_ih, gates2[r0:r1], 0.0)


@njit(cache=True, nogil=True)
def weight_gradients(
    dgates2, x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias, project, dh_out2, hidden2,
    dw_hr, accumulate, part, parts,
):  # fmt: skip
    """The GEMMs after the backward loop, over all ``N = T * B`` rows at once:
    ``dx2 (N, I)`` (when ``need_dx``), ``dw_ih (4H, I)``, ``dw_hh (4H, P)``, ``dbias (4H,)``
    and, when ``project``, ``dw_hr (P, H) = dh_out2 (N, P).T @ hidden2 (N, H)``. With
    ``accumulate`` ``dw_ih`` and ``dw_hh`` get the gradients added to what they hold (the
    layer's gradient buffers), otherwise overwritten. This call does share ``part`` of
    ``parts`` (rows of each output), so threads can split it."""
    r0, r1 = _share(dgates2.shape[0], part, parts)
    if need_dx and r1 > r0:
        gemm(False, False, dgates2[r0:r1], weight_ih, dx2[r0:r1], 0.0)
    g0, g1 = _share(dgates2.shape[1], part, parts)
    if g1 > g0:
        dg = dgates2[:, g0:g1]
        beta = 1.0 if accumulate else 0.0
        gemm(True, False, dg, x2, dw_ih[g0:g1], beta)
        gemm(True, False, dg, h_in2, dw_hh[g0:g1], beta)
        total = np.zeros(g1 - g0, np.float64)  # float64 sum: no drift over T * B rows
        add_rows(dgates2[:, g0:g1], total)
        for g in range(g0, g1):
            dbias[g] = total[g - g0]
    p0, p1 = _share(dw_hr.shape[0], part, parts)
    if project and p1 > p0:
        gemm(True, False, dh_out2[:, p0:p1], hidden2, dw_hr[p0:p1], 0.0)


# Rows of T * B per pass of the packed weight gradients: one pass's packed inputs stay
# in L2 while every row block of the transposed gate gradients goes past them.
KC = 256
# Steps per pass at most in a pipelined backward (:mod:`._entries`), which hands the
# passes to a second thread as the loop finishes their steps, so a short call needs
# several of them (50 steps of batch 1: passes of 16, 16, 16 and 2 steps).
CHUNK_STEPS = 16
# Gate columns transposed at a time within a pass (a multiple of MR and LANES): the
# scratch for the transposed gate gradients is GC x KC (192 KiB), not 4H x KC (1 MiB at
# H = 256), and every element is still summed in the same order.
GC = 192


def pass_rows(steps: int, batch: int, pipelined: bool) -> int:
    """Rows of ``T * B`` in each pass of :func:`packed_weight_gradients` for a call of
    ``steps`` steps of ``batch`` rows: :data:`KC`, or for a ``pipelined`` backward
    (:func:`kioku.kernels._entries.pipelined_backward`, ``batch <= KC``) whole steps, at
    most :data:`CHUNK_STEPS` of them, so that a second thread can take a pass as soon as
    the loop has finished its steps. A function of the call's shape and path, never of
    the thread count: one thread or two sum every element alike."""
    if pipelined:
        return batch * min(CHUNK_STEPS, KC // batch)
    return max(1, min(KC, steps * batch))


@njit(cache=True, nogil=True)
def _transpose(src, dst):
    """``dst (C, R)[j, i] = src (R, C)[i, j]``, float32, both with unit stride along their
    rows: LANES x LANES blocks transposed in registers, the edges one element at a time."""
    R, C = src.shape
    item = 4
    src_ld, dst_ld = src.strides[0] // item, dst.strides[0] // item
    r_full, c_full = R - R % LANES, C - C % LANES
    s0, d0 = src.ctypes.data, dst.ctypes.data
    for i0 in range(0, r_full, LANES):
        for j0 in range(0, c_full, LANES):
            _transpose_block(
                s0 + (i0 * src_ld + j0) * item, src_ld, d0 + (j0 * dst_ld + i0) * item, dst_ld
            )
    for i in range(R):
        for j in range(c_full if i < r_full else 0, C):
            dst[j, i] = src[i, j]


@njit(cache=True, nogil=True)
def packed_input_gradient(dgates2, weight_ih, dx2, tile):
    """``dx2 (M, I) = dgates2 (M, 4H) @ weight_ih (4H, I)`` on the packed kernel, one panel
    of ``NR`` columns of ``weight_ih`` packed at a time into a ``(1, 4H, NR)`` scratch
    (256 KiB at H = 256) instead of the whole matrix: the kernel goes panel by panel
    anyway, so the products and their order are those of one packed GEMM."""
    M, G = dgates2.shape
    I = weight_ih.shape[1]
    if M == 0:
        return
    panel = aligned_panels(1, G, NR)
    for j0 in range(0, I, NR):
        j1 = min(I, j0 + NR)
        pack_panels(weight_ih[:, j0:j1], panel)
        packed_gemm(dgates2, panel, dx2[:, j0:j1], 0.0, tile)


@njit(cache=True, nogil=True)
def gradient_scratch(N, G, I, P, kc, g0, g1):
    """A part's scratch for :func:`gradient_pass` over gate columns ``g0:g1``: the
    transposed gate gradients ``(min(GC, g1 - g0), kc)``, the packed inputs and hidden
    states of one pass (``(ceil(I / NR), kc, NR)``, ``(ceil(P / NR), kc, NR)``), the bias
    sums ``(g1 - g0,)`` float64 (no drift over the ``N`` rows) and the tile."""
    gc = max(1, min(GC, g1 - g0))
    dg_t = np.empty((gc, kc), np.float32)
    x_panels = aligned_panels((I + NR - 1) // NR, kc, NR)
    h_panels = aligned_panels((P + NR - 1) // NR, kc, NR)
    return dg_t, x_panels, h_panels, np.zeros(max(0, g1 - g0), np.float64)


@njit(cache=True, nogil=True)
def gradient_pass(
    dgates2, x2, h_in2, dw_ih, dw_hh, k0, k, beta, g0, g1, dg_t, x_panels, h_panels, total,
    tile,
):  # fmt: skip
    """One pass of :func:`packed_weight_gradients`: rows ``k0:k0 + k`` of ``dgates2``,
    ``x2`` and ``h_in2`` into gate rows ``g0:g1`` of ``dw_ih``/``dw_hh`` (``beta`` 0:
    overwritten, 1: added to) and their column sums into ``total``; scratch from
    :func:`gradient_scratch`."""
    pack_panels(x2[k0 : k0 + k], x_panels[:, :k])
    pack_panels(h_in2[k0 : k0 + k], h_panels[:, :k])
    gc = dg_t.shape[0]
    for c0 in range(g0, g1, gc):
        c1 = min(g1, c0 + gc)
        block = dg_t[: c1 - c0, :k]
        _transpose(dgates2[k0 : k0 + k, c0:c1], block)
        # the bias gradient (column sums) from the block just transposed, while it is in
        # cache: no pass of its own over (N, 4H)
        add_rows(dgates2[k0 : k0 + k, c0:c1], total[c0 - g0 : c1 - g0])
        packed_gemm(block, x_panels[:, :k], dw_ih[c0:c1], beta, tile)
        packed_gemm(block, h_panels[:, :k], dw_hh[c0:c1], beta, tile)


@njit(cache=True, nogil=True)
def pass_bounds(N, kc, j):
    """Rows ``(k0, k1)`` of pass ``j`` over ``N`` rows in passes of ``kc``, from the end."""
    k1 = N - j * kc
    return max(0, k1 - kc), k1


@njit(cache=True, nogil=True)
def packed_weight_gradients(
    dgates2, x2, h_in2, weight_ih, need_dx, dx2, dw_ih, dw_hh, dbias, accumulate, part, parts,
    kc,
):  # fmt: skip
    """:func:`weight_gradients` without projection, float32, with the packed kernel
    instead of BLAS: ``dx2 (N, I) = dgates2 (N, 4H) @ weight_ih (4H, I)`` (by
    :func:`packed_input_gradient`), ``dw_ih (4H, I) = dgates2.T @ x2 (N, I)``,
    ``dw_hh (4H, P) = dgates2.T @ h_in2 (N, P)`` (added to what they hold with
    ``accumulate``), ``dbias (4H,)``. The ``N`` rows go in passes of ``kc`` rows
    (:func:`pass_rows`; the last rows first, the short pass at the start), each packing
    its slices of ``x2``/``h_in2`` and transposing its slice of ``dgates2`` :data:`GC`
    columns at a time into this thread's scratch. Right for any widths; as fast as
    OpenBLAS only when I and P are multiples of :data:`~kioku.kernels._packed.NR` (every
    panel full). A part does its share of the rows of each output, and each element is
    summed in the same order whatever ``parts`` is. No BLAS call: OpenBLAS's thread
    count is not touched."""
    N, G = dgates2.shape
    I, P = x2.shape[1], h_in2.shape[1]
    tile = np.empty((MR, NR), np.float32)
    r0, r1 = _share(N, part, parts)
    if need_dx and r1 > r0:
        packed_input_gradient(dgates2[r0:r1], weight_ih, dx2[r0:r1], tile)
    g0, g1 = _share(G, part, parts)
    if g1 <= g0:
        return
    kc = max(1, min(kc, N))  # scratch no bigger than needed: fresh pages cost more
    dg_t, x_panels, h_panels, total = gradient_scratch(N, G, I, P, kc, g0, g1)
    for j in range(-(-N // kc)):
        k0, k1 = pass_bounds(N, kc, j)
        beta = 1.0 if accumulate or j > 0 else 0.0
        gradient_pass(
            dgates2, x2, h_in2, dw_ih, dw_hh, k0, k1 - k0, beta, g0, g1, dg_t, x_panels,
            h_panels, total, tile,
        )  # fmt: skip
    for g in range(g0, g1):
        dbias[g] = total[g - g0]
