"""The inference step's two products in gate order, on the packed kernel's registers.

Each step of a fused inference call computes ``x_t @ weight_ih.T + h_prev @
weight_hh.T`` for its rows. With the weights packed as :mod:`._packed` packs them
(64-column panels of ``4H``), H = 200 is 12.5 panels: the last one half empty, 4 % of
the FMAs spent on columns past ``4H``, and the two products are two passes, the second
reloading and adding to what the first stored. Here both weights are packed in gate
order (:func:`pack_gate_panels`: each panel the four gates of :data:`GATE_UNITS` hidden
units, the last panel half as wide when its units fit), and one kernel per tile sums
both products in one chain of FMAs per element (:func:`pair_product`). Where a panel's
four gate blocks are one vector each (AVX-512) the kernel stores each gate's vector
straight to its place in the plain ``(B, 4H)`` layout, so the gate pass after it is
unchanged. float32 only; raw addresses, as in :mod:`._packed`.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import njit
from ._packed import LANES, MR, NR, NR_VECS, _transpose_block, fma_loop

# Each panel holds the four gates of GATE_UNITS hidden units side by side (i, f, g, o,
# GATE_UNITS columns each). The last panel holds the remaining units rounded up to a
# multiple of LANES / 4, and its tile is half a panel wide when they fit in it (H = 200:
# 12 panels of 16 units and one of 8, 32 columns wide: 800 columns computed, where the
# plain layout computes 832).
GATE_UNITS = NR // 4


def gate_panels_shape(k: int, units: int) -> tuple[int, int, int]:
    """Shape of :func:`pack_gate_panels`' output for ``K = k`` inputs and ``H = units``
    hidden units: ``(ceil(H / GATE_UNITS), k, NR)``."""
    return (-(-units // GATE_UNITS), k, NR)


@njit(cache=True, nogil=True)
def pack_gate_panels(w, out):
    """Pack ``w (4H, K)`` (unit stride along its rows; in gate order i, f, g, o as the LSTM
    weights hold them) into ``out (ceil(H / GATE_UNITS), K, NR)`` transposed and in gate
    order: with ``u0 = q * GATE_UNITS``, ``n`` the units of panel ``q`` and ``width``
    ``n`` rounded up to a multiple of ``LANES // 4``,
    ``out[q, p, gate * width + u] = w[gate * H + u0 + u, p]`` for ``u < n``, zero in the
    other columns."""
    pack_gate_panel_range(w, out, 0, out.shape[0])


@njit(cache=True, nogil=True)
def pack_gate_panel_range(w, out, q0, q1):
    """:func:`pack_gate_panels` for panels ``q0:q1`` only (threads can share a matrix)."""
    H = w.shape[0] // 4
    K = w.shape[1]
    step = LANES // 4
    item = w.itemsize
    ld = w.strides[0] // item
    # where a gate's block is one vector: LANES x LANES blocks transposed in registers
    blocked = K - K % LANES if w.strides[1] == item and item == 4 else 0
    for q in range(q0, q1):
        u0 = q * GATE_UNITS
        n = min(GATE_UNITS, H - u0)
        width = (n + step - 1) // step * step
        panel = out[q]
        full = n == LANES and 4 * LANES == NR  # every column written below
        if not full:
            panel[:, :] = 0
        for gate in range(4):
            first = 0
            if full:
                for p0 in range(0, blocked, LANES):
                    src = w[gate * H + u0, p0:].ctypes.data
                    _transpose_block(src, ld, panel[p0, gate * LANES :].ctypes.data, NR)
                first = blocked
            for u in range(n):
                row = w[gate * H + u0 + u]
                col = gate * width + u
                for p in range(first, K):
                    panel[p, col] = row[p]


def _pair_sums(builder, args, rows: int, vecs: int) -> list:
    """Emit the two FMA loops of a pair kernel (``args``: ``a1, lda1, b1, k1, a2, lda2,
    b2, k2`` first), the second carrying on the first's sums, and return the
    ``rows * vecs`` accumulator vectors, row-major."""
    i64 = ir.IntType(64)
    vec = ir.VectorType(ir.FloatType(), LANES)
    fptr = ir.FloatType().as_pointer()
    accs = [ir.Constant(vec, None)] * (rows * vecs)
    for source in range(2):
        a_addr, lda_v, b_addr, k_v = args[4 * source : 4 * source + 4]
        b_ptr = builder.inttoptr(b_addr, fptr)

        def row_loads(p, b_ptr=b_ptr):
            row_b = builder.gep(b_ptr, [builder.mul(p, ir.Constant(i64, NR))])
            return [
                builder.load(
                    builder.bitcast(
                        builder.gep(row_b, [ir.Constant(i64, j * LANES)]), vec.as_pointer()
                    ),
                    align=4,
                )
                for j in range(vecs)
            ]

        a_ptr = builder.inttoptr(a_addr, fptr)
        accs = fma_loop(builder, a_ptr, lda_v, k_v, rows, accs, row_loads, f"source{source}")
    return accs


def _make_pair_kernel(rows: int, narrow_only: bool = False):
    """An intrinsic ``kernel(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, half)``
    (addresses, element counts and a flag, int64): with ``S[r] = sum_p a1[r, p] * B1[p] +
    sum_p a2[r, p] * B2[p]`` for ``r < rows``, one chain of FMAs per element (the ``k1``
    terms in order, then the ``k2``), vector ``j < vecs`` of ``S[r]`` (columns
    ``j * LANES`` on) is stored at ``c + r * ldc + j * gs`` floats, ``vecs`` being
    :data:`HALF_VECS` where ``half`` is not 0, else ``NR_VECS``: a tile (``ldc = NR``,
    ``gs = LANES``) or, in gate order with one gate a vector, straight into the
    ``(B, 4H)`` pre-activations (``ldc = 4H``, ``gs = H``). ``B1``/``B2`` are one packed
    panel each (rows ``NR`` floats apart; only the first ``vecs`` vectors read);
    ``k1, k2 >= 1``. With ``narrow_only`` it always stores :data:`HALF_VECS` vectors
    (``half`` not read): the tall tile's rows, too many for a whole panel's registers."""

    @intrinsic
    def kernel(typingctx, a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, half):
        sig = types.void(*([types.int64] * 12))

        def codegen(context, builder, signature, args):
            i64 = ir.IntType(64)
            vec_ptr = ir.VectorType(ir.FloatType(), LANES).as_pointer()
            c_ptr = builder.inttoptr(args[8], ir.FloatType().as_pointer())
            ldc_v, gs_v = args[9], args[10]

            def store(vecs: int) -> None:
                accs = _pair_sums(builder, args, rows, vecs)
                for r in range(rows):
                    row_c = builder.gep(c_ptr, [builder.mul(ir.Constant(i64, r), ldc_v)])
                    for j in range(vecs):
                        addr = builder.gep(row_c, [builder.mul(ir.Constant(i64, j), gs_v)])
                        builder.store(accs[r * vecs + j], builder.bitcast(addr, vec_ptr), align=4)

            if narrow_only:
                store(HALF_VECS)
                return context.get_dummy_value()
            is_half = builder.icmp_signed("!=", args[11], ir.Constant(i64, 0))
            with builder.if_else(is_half) as (narrow, whole):
                for vecs, branch in ((HALF_VECS, narrow), (NR_VECS, whole)):
                    with branch:
                        store(vecs)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


# Two widths only, a whole panel and half of one: a last panel of 1..3 vectors' worth of
# gates runs as the half or the whole (at most one vector of zero columns computed;
# none at H = 200), each kernel holding both (each one is compiled into every loop that
# reaches it: 4 widths made the first inference call 14 s longer).
HALF_VECS = max(1, NR_VECS // 2)
# rows 1..6; on hosts with MR < 6 the missing ones repeat the largest (never called there)
_p1, _p2, _p3, _p4, _p5, _p6 = [_make_pair_kernel(min(r, MR)) for r in range(1, 7)]


@njit(cache=True, nogil=True)
def pair_tile(rows, half, a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs):
    """``a1[r] @ B1 + a2[r] @ B2`` for ``r < rows`` (1..MR), :data:`HALF_VECS` (``half``)
    or ``NR_VECS`` vectors of it stored at ``c`` as :func:`_make_pair_kernel` says
    (addresses, counts and strides as there)."""
    h = 1 if half else 0
    if rows == 1:
        _p1(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)
    elif rows == 2:
        _p2(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)
    elif rows == 3:
        _p3(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)
    elif rows == 4:
        _p4(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)
    elif rows == 5:
        _p5(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)
    else:
        _p6(a1, lda1, b1, k1, a2, lda2, b2, k2, c, ldc, gs, h)


@njit(cache=True, nogil=True)
def pair_product(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile):
    """:func:`pair_product_panels` over every panel: all ``4H`` columns of ``a``."""
    pair_product_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, 0, panels_hh.shape[0])


@njit(cache=True, nogil=True)
def pair_product_panels(x_t, panels_ih, h_prev, panels_hh, a, b0, b1, tile, q0, q1):
    """Panels ``q0:q1`` only (hidden units ``q0 * GATE_UNITS`` up to ``q1 * GATE_UNITS``
    or ``H``, their four gates each), so threads can split a step by units:
    ``a (B, 4H) = x_t (B, I) @ weight_ih.T + h_prev (B, P) @ weight_hh.T`` for rows
    ``b0:b1``, from ``panels_ih``/``panels_hh``, ``weight_ih (4H, I)``/``weight_hh
    (4H, P)`` packed in gate order (:func:`pack_gate_panels`; ``I, P >= 1``): each
    element one chain of FMAs over both products (no store and reload between them), at
    most one vector of columns past ``4H`` computed. Where a panel's gate blocks are one
    vector each (16 units with AVX-512) the kernel stores them straight into ``a``; the
    other panels go through ``tile (MR, NR)``. float32, rows C-contiguous."""
    M = b1 - b0
    if M <= 0:
        return
    H = a.shape[1] // 4
    I, P = x_t.shape[1], h_prev.shape[1]
    item = 4
    lda1, lda2, ldc = x_t.strides[0] // item, h_prev.strides[0] // item, a.strides[0] // item
    x0, h0, a0, t0 = x_t.ctypes.data, h_prev.ctypes.data, a.ctypes.data, tile.ctypes.data
    blocks = -(-M // MR)
    base, extra = M // blocks, M % blocks
    step = LANES // 4
    for q in range(q0, q1):
        u0 = q * GATE_UNITS
        n = min(GATE_UNITS, H - u0)
        width = (n + step - 1) // step * step
        half = 4 * width <= HALF_VECS * LANES
        direct = width == LANES and n == width  # each gate one vector of the full kernel
        b_ih, b_hh = panels_ih[q].ctypes.data, panels_hh[q].ctypes.data
        i = b0
        for block in range(blocks):
            rows = base + 1 if block < extra else base
            a1, a2 = x0 + i * lda1 * item, h0 + i * lda2 * item
            if direct:
                dst = a0 + (i * ldc + u0) * item
                pair_tile(rows, half, a1, lda1, b_ih, I, a2, lda2, b_hh, P, dst, ldc, H)
            else:
                pair_tile(rows, half, a1, lda1, b_ih, I, a2, lda2, b_hh, P, t0, NR, LANES)
                for r in range(rows):
                    row, tr = a[i + r], tile[r]
                    for gate in range(4):
                        for k in range(n):
                            row[gate * H + u0 + k] = tr[gate * width + k]
            i += rows
