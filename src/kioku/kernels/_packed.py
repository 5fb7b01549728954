"""A float32 GEMM for the per-step recurrent product, with the weights packed once per call.

OpenBLAS packs its ``B`` operand into panels on every call: per time step it copies the
whole recurrent weight matrix, which at batch 20 costs about as much as the product
itself. Here the weights are packed once per call (:func:`pack_panels`) into panels of
:data:`NR` columns, each panel ``(K, NR)`` contiguous, and every step streams them
through a register-blocked micro-kernel: up to :data:`MR` rows of the left operand
times one panel, ``MR x NR`` accumulators held in vector registers across the whole
``K`` loop, one broadcast of ``a[r, p]`` and :data:`NR` ``/ LANES`` vector loads per
``p``. Numba's own code generation does not keep a tile of accumulators in registers,
so the micro-kernel is written as LLVM IR (a Numba intrinsic, compiled into its callers
and cached with them).

Everything here is float32 and reads raw addresses: callers pass C-contiguous rows
(unit stride along the last axis), which the LSTM loops guarantee.
"""

from __future__ import annotations

from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import njit


def _target_has_avx512() -> bool:
    """Whether the code Numba emits may use AVX-512: the features it compiles for, which
    are ``NUMBA_CPU_FEATURES`` where that is set (say, to build for an AVX2 machine, or
    for the generic target) and the host's otherwise."""
    from numba.core import config

    try:
        if config.CPU_FEATURES is not None:
            return "+avx512f" in config.CPU_FEATURES.split(",")
        return bool(llvm_binding.get_host_cpu_features().get("avx512f", False))
    except RuntimeError:  # LLVM cannot tell on this host: assume the narrower vectors
        return False


# One vector register holds LANES float32; a panel is NR_VECS registers wide. With
# AVX-512 (32 registers): 6 x 4 accumulators + 4 panel loads + 1 broadcast = 29. With
# AVX2 (16 registers) half the width and half the panel: 6 x 2 + 2 + 1 = 15 (BLIS's
# Haswell tile). Measured on one thread of a Zen 4 with NUMBA_CPU_FEATURES set to AVX2,
# (B, H) x (H, 4H) per step: 4 rows a tile 100-105 GFLOP/s, 6 rows 110-112 (AVX-512:
# 114).
LANES = 16 if _target_has_avx512() else 8
NR_VECS = 4 if LANES == 16 else 2
NR = LANES * NR_VECS
MR = 6
_ITEM = 4  # bytes per float32


def fma_loop(builder, a_ptr, lda_v, k_v, rows: int, initial: list, row_loads, name: str) -> list:
    """Emit the loop of a register tile: for ``p < k_v``, ``a[r, p]`` (``a_ptr`` rows
    ``lda_v`` floats apart) broadcast and multiplied into each vector of ``row_loads(p)``
    (row ``p`` of B, a list of vectors), added by one FMA to its accumulator, for each row
    ``r < rows``. ``initial``: the accumulators entering the loop (row-major,
    ``len(row_loads(p))`` a row); ``k_v >= 1``. Leaves ``builder`` after the loop and
    returns the accumulators there, in the same order: each element summed over ``p`` in
    order."""
    i64 = ir.IntType(64)
    vec = ir.VectorType(ir.FloatType(), LANES)
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{LANES}f32"
    )
    splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), None)
    undef = ir.Constant(vec, ir.Undefined)
    entry = builder.block
    loop = builder.append_basic_block(f"{name}_loop")
    done = builder.append_basic_block(f"{name}_done")
    builder.branch(loop)
    builder.position_at_end(loop)
    p = builder.phi(i64)
    p.add_incoming(ir.Constant(i64, 0), entry)
    phis = []
    for acc in initial:
        phi = builder.phi(vec)
        phi.add_incoming(acc, entry)
        phis.append(phi)
    loads = row_loads(p)
    width = len(loads)
    new_accs = []
    for r in range(rows):
        offset = builder.add(builder.mul(ir.Constant(i64, r), lda_v), p)
        scalar = builder.load(builder.gep(a_ptr, [offset]), align=4)
        first = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
        broadcast = builder.shuffle_vector(first, undef, splat_mask)
        for j in range(width):
            new_accs.append(builder.call(fma, [broadcast, loads[j], phis[r * width + j]]))
    p_next = builder.add(p, ir.Constant(i64, 1))
    p.add_incoming(p_next, loop)
    for phi, value in zip(phis, new_accs):
        phi.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", p_next, k_v), loop, done)
    builder.position_at_end(done)
    return new_accs


def _make_kernel(rows: int, panels: int = 1, vecs: int = NR_VECS):
    """An intrinsic ``kernel(a, lda, b, c, ldc, k, accumulate, panel_stride)`` (addresses,
    element counts and a flag, all int64): ``c[r, :panels * W] = sum_p a[r, p] *
    B[p, :panels * W]`` for ``r < rows``, ``W = vecs * LANES`` (``NR``, or fewer columns:
    the first ``vecs`` vectors of each panel row, for a last panel only partly filled),
    plus the old ``c`` when ``accumulate`` is not 0; ``a`` rows ``lda`` floats apart,
    ``B`` ``panels`` packed panels ``(k, NR)``, the first at ``b`` and each
    ``panel_stride`` floats after the one before, ``c`` rows ``ldc`` floats apart;
    ``k >= 1``. Every element is summed over ``p`` in order, whatever ``rows``,
    ``panels`` and ``vecs``: the results do not depend on how a product is tiled."""

    @intrinsic
    def kernel(typingctx, a, lda, b, c, ldc, k, accumulate, panel_stride):
        sig = types.void(*([types.int64] * 8))

        def codegen(context, builder, signature, args):
            a_addr, lda_v, b_addr, c_addr, ldc_v, k_v, accumulate_v, stride_v = args
            f32 = ir.FloatType()
            i64 = ir.IntType(64)
            vec = ir.VectorType(f32, LANES)
            fptr = f32.as_pointer()
            a_ptr = builder.inttoptr(a_addr, fptr)
            b_ptr = builder.inttoptr(b_addr, fptr)
            c_ptr = builder.inttoptr(c_addr, fptr)
            zero = ir.Constant(vec, None)
            width = panels * vecs  # vectors of one row of accumulators

            def row_loads(p):
                loads = []
                for q in range(panels):
                    start = builder.add(
                        builder.mul(ir.Constant(i64, q), stride_v),
                        builder.mul(p, ir.Constant(i64, NR)),
                    )
                    row_b = builder.gep(b_ptr, [start])
                    for j in range(vecs):
                        addr = builder.gep(row_b, [ir.Constant(i64, j * LANES)])
                        loads.append(builder.load(builder.bitcast(addr, vec.as_pointer()), align=4))
                return loads

            initial = [zero] * (rows * width)
            new_accs = fma_loop(builder, a_ptr, lda_v, k_v, rows, initial, row_loads, "panel")
            is_sum = builder.icmp_signed("!=", accumulate_v, ir.Constant(i64, 0))
            with builder.if_else(is_sum) as (add, overwrite):
                for adding in (True, False):
                    with add if adding else overwrite:
                        for r in range(rows):
                            row_c = builder.gep(c_ptr, [builder.mul(ir.Constant(i64, r), ldc_v)])
                            for j in range(width):
                                addr = builder.gep(row_c, [ir.Constant(i64, j * LANES)])
                                where = builder.bitcast(addr, vec.as_pointer())
                                value = new_accs[r * width + j]
                                if adding:
                                    value = builder.fadd(builder.load(where, align=4), value)
                                builder.store(value, where, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


_KERNELS = [_make_kernel(rows) for rows in range(1, MR + 1)]
_k1, _k2, _k3, _k4, _k5, _k6 = _KERNELS + _KERNELS[-1:] * (6 - MR)
# One row against several panels at once: a single row has too few accumulators per
# panel (NR_VECS) to hide the FMA latency, MR panels side by side have as many as MR rows.
_ROW_KERNELS = [_make_kernel(1, panels) for panels in range(2, MR + 1)]
_p2, _p3, _p4, _p5, _p6 = _ROW_KERNELS + _ROW_KERNELS[-1:] * (6 - MR)


@njit(cache=True, nogil=True)
def _tile(rows, accumulate, a, lda, b, c, ldc, k):
    # literal dispatch: each intrinsic is specialised on its row count
    if rows == 1:
        _k1(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 2:
        _k2(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 3:
        _k3(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 4:
        _k4(a, lda, b, c, ldc, k, accumulate, 0)
    elif rows == 5:
        _k5(a, lda, b, c, ldc, k, accumulate, 0)
    else:
        _k6(a, lda, b, c, ldc, k, accumulate, 0)


# A last panel only partly filled (N not a multiple of NR: H = 200 leaves 8 of 64 columns)
# reads only the vectors it needs, into the scratch tile: not a full panel's FMAs for a
# few columns (a quarter of the work of dh = dgates @ W_hh at H = 200 went there).
_EDGE = [[_make_kernel(rows, 1, min(v, NR_VECS)) for rows in range(1, MR + 1)] for v in (1, 2, 3)]
_e11, _e12, _e13, _e14, _e15, _e16 = _EDGE[0] + _EDGE[0][-1:] * (6 - MR)
_e21, _e22, _e23, _e24, _e25, _e26 = _EDGE[1] + _EDGE[1][-1:] * (6 - MR)
_e31, _e32, _e33, _e34, _e35, _e36 = _EDGE[2] + _EDGE[2][-1:] * (6 - MR)


@njit(cache=True, nogil=True)
def _edge_tile(rows, vecs, a, lda, b, c, ldc, k):
    # ``_tile`` overwriting the first ``vecs`` (1 to NR_VECS - 1) vectors of ``c``'s rows
    if vecs == 1:
        if rows == 1:
            _e11(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 2:
            _e12(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 3:
            _e13(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 4:
            _e14(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 5:
            _e15(a, lda, b, c, ldc, k, 0, 0)
        else:
            _e16(a, lda, b, c, ldc, k, 0, 0)
    elif vecs == 2:
        if rows == 1:
            _e21(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 2:
            _e22(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 3:
            _e23(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 4:
            _e24(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 5:
            _e25(a, lda, b, c, ldc, k, 0, 0)
        else:
            _e26(a, lda, b, c, ldc, k, 0, 0)
    else:
        if rows == 1:
            _e31(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 2:
            _e32(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 3:
            _e33(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 4:
            _e34(a, lda, b, c, ldc, k, 0, 0)
        elif rows == 5:
            _e35(a, lda, b, c, ldc, k, 0, 0)
        else:
            _e36(a, lda, b, c, ldc, k, 0, 0)


@njit(cache=True, nogil=True)
def partial_tile(rows, width, a, lda, b, c, ldc, k):
    """``_tile`` without accumulation for a last panel with ``width`` (< NR) columns:
    at least the first ``width`` columns of ``c``'s rows overwritten, by the narrow
    kernels where fewer than NR_VECS vectors hold them."""
    vecs = (width + LANES - 1) // LANES
    if vecs < NR_VECS:
        _edge_tile(rows, vecs, a, lda, b, c, ldc, k)
    else:
        _tile(rows, 0, a, lda, b, c, ldc, k)


@njit(cache=True, nogil=True)
def _row_panels(count, accumulate, a, b, stride, c, k):
    # one row times ``count`` (2..MR) full panels ``stride`` floats apart
    if count == 2:
        _p2(a, 0, b, c, 0, k, accumulate, stride)
    elif count == 3:
        _p3(a, 0, b, c, 0, k, accumulate, stride)
    elif count == 4:
        _p4(a, 0, b, c, 0, k, accumulate, stride)
    elif count == 5:
        _p5(a, 0, b, c, 0, k, accumulate, stride)
    else:
        _p6(a, 0, b, c, 0, k, accumulate, stride)


@intrinsic
def _transpose_block(typingctx, src, src_ld, dst, dst_ld):
    """``dst[i, k] = src[k, i]`` for a ``LANES x LANES`` float32 block (addresses, row
    strides in floats; all int64): LANES vector loads, log2(LANES) rounds of shuffles
    that swap one bit of the row index with the same bit of the column index, LANES
    vector stores."""
    sig = types.void(*([types.int64] * 4))

    def codegen(context, builder, signature, args):
        src_addr, src_ld_v, dst_addr, dst_ld_v = args
        f32, i64, i32 = ir.FloatType(), ir.IntType(64), ir.IntType(32)
        vec = ir.VectorType(f32, LANES)
        src_ptr = builder.inttoptr(src_addr, f32.as_pointer())
        dst_ptr = builder.inttoptr(dst_addr, f32.as_pointer())
        rows = []
        for i in range(LANES):
            addr = builder.gep(src_ptr, [builder.mul(ir.Constant(i64, i), src_ld_v)])
            rows.append(builder.load(builder.bitcast(addr, vec.as_pointer()), align=4))
        bit = 1
        while bit < LANES:
            keep = [k if k & bit == 0 else LANES + (k ^ bit) for k in range(LANES)]
            take = [k | bit if k & bit == 0 else LANES + k for k in range(LANES)]
            for i in range(LANES):
                if i & bit == 0:
                    a, b = rows[i], rows[i | bit]
                    mask_keep = ir.Constant(ir.VectorType(i32, LANES), keep)
                    mask_take = ir.Constant(ir.VectorType(i32, LANES), take)
                    rows[i] = builder.shuffle_vector(a, b, mask_keep)
                    rows[i | bit] = builder.shuffle_vector(a, b, mask_take)
            bit *= 2
        for i in range(LANES):
            addr = builder.gep(dst_ptr, [builder.mul(ir.Constant(i64, i), dst_ld_v)])
            builder.store(rows[i], builder.bitcast(addr, vec.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


def panels_shape(k: int, n: int) -> tuple[int, int, int]:
    """Shape of the packed form of a ``(k, n)`` right operand: ``(ceil(n / NR), k, NR)``."""
    return (-(-n // NR), k, NR)


@njit(cache=True, nogil=True)
def pack_panels(b, out):
    """Pack ``b (K, N)`` (unit stride along one of its axes) into
    ``out (ceil(N / NR), K, NR)``: ``out[q, p, v] = b[p, q * NR + v]``, zero past column
    ``N``. Reads ``b`` along its contiguous axis: a transposed view (the forward's
    ``weight_hh.T``) is read row by row of the underlying matrix."""
    K, N = b.shape
    full = N // NR
    if b.strides[1] == b.itemsize or K == 1:
        for q in range(full):
            for p in range(K):
                src, dst = b[p], out[q, p]
                for v in range(NR):
                    dst[v] = src[q * NR + v]
    else:  # a transposed view: LANES x LANES blocks transposed in registers
        item = b.itemsize
        src_ld = b.strides[1] // item
        blocked = K - K % LANES if b.strides[0] == item and item == _ITEM else 0
        for q in range(full):
            for v0 in range(0, NR, LANES):
                j = q * NR + v0
                for p0 in range(0, blocked, LANES):
                    src = b[p0:, j:].ctypes.data
                    _transpose_block(src, src_ld, out[q, p0, v0:].ctypes.data, NR)
                cols = b[:, j : j + LANES]
                for p in range(blocked, K):
                    dst = out[q, p]
                    for v in range(LANES):
                        dst[v0 + v] = cols[p, v]
    if full < out.shape[0]:  # the last panel, zero-padded
        out[full] = 0
        for p in range(K):
            for j in range(full * NR, N):
                out[full, p, j - full * NR] = b[p, j]


@njit(cache=True, nogil=True)
def packed_gemm(a, panels, c, beta, tile):
    """``c (M, N) = a (M, K) @ B + beta * c`` (``beta`` 0 or 1), float32, with ``B (K, N)``
    given as ``panels`` from :func:`pack_panels`. ``a`` and ``c`` have unit stride along
    their rows; ``tile (MR, NR)`` is scratch for the last, partial panel. Rows go in
    blocks of at most :data:`MR`, as even as possible (20 rows: 4 x 5, not 3 x 6 + 2); a
    single row goes against up to :data:`MR` panels at once."""
    M, K = a.shape
    N = c.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        if beta == 0:
            c[:, :] = 0
        return
    accumulate = 1 if beta != 0 else 0
    lda, ldc = a.strides[0] // _ITEM, c.strides[0] // _ITEM
    a0, c0 = a.ctypes.data, c.ctypes.data
    t0 = tile.ctypes.data
    blocks = -(-M // MR)
    base, extra = M // blocks, M % blocks
    first = 0  # panels done by the one-row pass
    if M == 1:  # up to MR full panels per pass, to have enough accumulators in flight
        full, stride = N // NR, panels.strides[0] // _ITEM
        while first + 1 < full:
            count = min(MR, full - first)
            b_addr, c_addr = panels[first].ctypes.data, c0 + first * NR * _ITEM
            _row_panels(count, accumulate, a0, b_addr, stride, c_addr, K)
            first += count
    for q in range(first, panels.shape[0]):
        j0 = q * NR
        b_addr = panels[q].ctypes.data
        width = min(NR, N - j0)
        i = 0
        for block in range(blocks):
            rows = base + 1 if block < extra else base
            a_addr = a0 + i * lda * _ITEM
            if width == NR:
                _tile(rows, accumulate, a_addr, lda, b_addr, c0 + (i * ldc + j0) * _ITEM, ldc, K)
            else:
                partial_tile(rows, width, a_addr, lda, b_addr, t0, NR, K)
                for r in range(rows):
                    for v in range(width):
                        value = tile[r, v]
                        c[i + r, j0 + v] = c[i + r, j0 + v] + value if accumulate else value
            i += rows
