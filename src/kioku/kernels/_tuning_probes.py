"""The micro-benchmarks behind :mod:`._tuning`: each times the two paths a threshold
chooses between, at each of its candidate sizes, on the kernels themselves.

A probe returns ``(levels, note)``: one ``{"quantity", "on_s", "off_s"}`` per candidate
(the call's quantity in the threshold's units, seconds per call with the guarded path
taken and not taken), or no levels and a note saying why the choice does not matter on
this machine. The paths are forced by setting the kernels' module attributes for the
duration of one call (:func:`~._probe_timing._with`), so what is timed is exactly what a
call with that threshold would run (the clock and the calls: :mod:`._probe_timing`).
Each path gets its own weight arrays: the compiled backend plans a call per weight-array
pair on first use (``_training_plan``) and keeps the path it chose then, so a path's plan
is made while its own setting is in force, as in real use. Short sequences keep the
whole tuning to seconds.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _pack_cache, _padding, _split_gemm, _threads, numba_lstm
from ._loop_gemms import project_inputs
from ._probe_timing import (
    _INF,
    _ONE_THREAD,
    Clock,
    _compare,
    _eval_levels,
    _forwards,
    _lstm,
    _one_thread_note,
    _planned_training,
    _probe_threads,
    _steps,
    _training,
    _with,
)
from ._tuning_choices import NO_LIMIT
from ._tuning_probes_mkl import (  # noqa: F401  (found by name: each Choice's ``probe``)
    mkl_gemm,
    mkl_rows,
    mkl_units,
    mkl_units_unsplit,
    mkl_units_wide,
)

__all__ = ["Clock"]  # and the probes, by name (each Choice's ``probe``)


def split_rows(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MIN_ROWS``: a training call at ``r`` rows per thread (``B = r x threads``,
    H = 256) split over the threads or run on one, every other split off: with the split
    by units left on, "one thread" was that split at H = 256, level with the split by rows
    at every ``r``, and noise set the threshold (4, 8 or 32 in six tunings on a 2-core
    Intel Xeon), where at larger ``H`` (weights past ``FUSED_MAX_BYTES``, no unit split) a
    batch under it runs its loop on one thread: a training call at (35, 20, 650) took 99.9
    ms with 32 against 81.8 with 4, at (35, 20, 200) 10.0 against 8.5 (interleaved, same
    Xeon; ``kioku bench`` had the first at 0.89x PyTorch under the tuning that chose 32)."""
    note = _one_thread_note()
    if note:
        return [], note
    levels = []
    for rows in choice.candidates:
        shape = (_steps(8, scale), int(rows) * _probe_threads(), 256)
        split_setting = {"MIN_FLOPS": (_threads, 0.0), "MIN_ROWS": (_threads, int(rows))}
        split = _with(split_setting, _training(*shape))
        whole = _with(_ONE_THREAD, _training(*shape))
        levels.append(_compare(clock, rows, split, whole))
    return levels, None


def split_flops(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MIN_FLOPS``: a training call at 16 rows per thread and hidden size ``H`` (its
    quantity ``8 B H^2``) split over the threads or run on one, over 48 steps (a training
    window's length: the split's cost comes once a call, its gain at every step, and 16
    steps had the split tie at H = 64 where 50 steps ran 26 % faster split)."""
    note = _one_thread_note()
    if note:
        return [], note
    batch = 16 * _probe_threads()
    levels = []
    for hidden in choice.candidates:
        shape = (_steps(48 if hidden < 256 else 8, scale), batch, int(hidden))
        split = _with({"MIN_FLOPS": (_threads, 0.0), "MIN_ROWS": (_threads, 16)}, _training(*shape))
        whole = _with(_ONE_THREAD, _training(*shape))
        levels.append(_compare(clock, 8.0 * batch * hidden * hidden, split, whole))
    return levels, None


def gemm_split(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``GEMM_SPLIT_FLOPS``: a training call at batch 2 (a batch no thread split takes),
    T = 48 and hidden size ``H`` (its quantity ``8 T B H^2``, one GEMM around the loops),
    with those GEMMs split over the threads or on the loop's one thread."""
    note = _one_thread_note()
    if note:
        return [], note
    levels = []
    steps = _steps(48, scale)
    for hidden in choice.candidates:
        shape = (steps, 2, int(hidden))
        split = _with({"GEMM_SPLIT_FLOPS": (_threads, 0.0)}, _training(*shape))
        whole = _with({"GEMM_SPLIT_FLOPS": (_threads, _INF)}, _training(*shape))
        levels.append(_compare(clock, 8.0 * steps * 2 * hidden * hidden, split, whole))
    return levels, None


def _unit_split_training(
    choice, clock: Clock, scale: float, batch: int, steps: int, make=_training,
    others: dict | None = None, whole_call: bool = False,
):  # fmt: skip
    """A training call at ``batch`` rows (no row split), ``steps`` long, hidden size ``H``
    (its quantity ``8 B H^2``, a step's recurrent flops; ``8 T B H^2`` with
    ``whole_call``) with ``choice``'s path (the threshold at 0) or not: each step split
    by units over the threads, or what ``choice`` guards. ``make``: the call;
    ``others``: settings in force on both sides."""
    note = _one_thread_note()
    if note:
        return [], note
    others = others or {}
    levels = []
    for hidden in choice.candidates:
        shape = (_steps(steps, scale), batch, int(hidden))
        split = _with({**others, choice.name: (_threads, 0.0)}, make(*shape))
        whole = _with({**others, choice.name: (_threads, _INF)}, make(*shape))
        quantity = 8.0 * batch * hidden * hidden * (shape[0] if whole_call else 1)
        levels.append(_compare(clock, quantity, split, whole))
    return levels, None


def unit_split(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``UNITS_MIN_FLOPS``: :func:`_unit_split_training` at batch 2, T = 32."""
    return _unit_split_training(choice, clock, scale, 2, 32)


def unit_split_row(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``UNITS_ROW_MIN_FLOPS``: :func:`_unit_split_training` at batch 1, T = 48: long
    enough that the GEMMs around the loop take every thread either way at H = 256 (at
    T = 32 they stay on the loop's one thread unsplit, and the two paths differ in more
    than the loop: there the split lost by a few per cent at H = 256, at T = 50 it won
    by 8-11 %, on a Zen 4)."""
    return _unit_split_training(choice, clock, scale, 1, 48)


def pipeline(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``PIPELINE_MIN_FLOPS``: :func:`_unit_split_training`'s call at batch 1, T = 48 (H
    multiples of every panel width) as a layer runs it (:func:`_planned_training`: the
    plans' few microseconds of Python are what the hand-off must beat), its weight
    gradients handed to a second thread a pass at a time while the loop goes on, or not."""
    return _unit_split_training(
        choice, clock, scale, 1, 48, _planned_training, _ONE_THREAD, whole_call=True
    )


def unit_split_inference(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``UNITS_INFER_MIN_FLOPS``: an inference call of one sequence (T = 32, hidden size
    ``H``; quantity ``8 H^2``) with the packed weights kept, as the layers call it in eval
    mode, each step split by units over the threads or not (the batch-1 loop)."""
    note = _one_thread_note()
    if note:
        return [], note
    setting = ("UNITS_INFER_MIN_FLOPS", _threads, 0.0, _INF)
    return _eval_levels(choice, clock, _steps(32, scale), 1, setting, lambda h: 8.0 * h * h), None


def directions(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``DIRECTIONS_MIN_FLOPS``: both directions' training calls (batch 16, hidden size
    ``H``; quantity ``8 B H^2``) at the same time or one after the other."""
    note = _one_thread_note()
    if note:
        return [], note
    levels = []
    for hidden in choice.candidates:
        pairs = [
            [_training(_steps(16, scale), 16, int(hidden), reverse) for reverse in (False, True)]
            for _ in range(2)
        ]
        both = functools.partial(_threads.run_directions, pairs[0], True)
        in_turn = functools.partial(_threads.run_directions, pairs[1], False)
        levels.append(_compare(clock, 8.0 * 16 * hidden * hidden, both, in_turn))
    return levels, None


def fused(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``FUSED_MIN_ROWS``: an inference call and a training forward on one thread at
    ``B`` rows (T = 35, H = 200), each step projecting its own inputs or one GEMM before
    the loop. (At T = 16, H = 128 the two paths were within a few per cent here and the
    probe chose 32 on an AMD EPYC, which made two-thread inference 12-18 % slower at
    (35, 20, 200) and (200, 32, 128): the longer, wider call is the representative one.)"""
    levels = []
    one_thread = _ONE_THREAD
    for rows in choice.candidates:
        shape = (_steps(35, scale), int(rows), 200)
        on = _with({**one_thread, "FUSED_MIN_ROWS": (numba_lstm, 1)}, _forwards(*shape))
        off = _with({**one_thread, "FUSED_MIN_ROWS": (numba_lstm, 1 << 30)}, _forwards(*shape))
        levels.append(_compare(clock, rows, on, off))
    return levels, None


def fused_bytes(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``FUSED_MAX_BYTES``: the calls of :func:`fused` on one thread at hidden size ``H``
    (its quantity: both weights' bytes, ``32 H^2``), each step projecting its own inputs or
    one GEMM before the loop: where the weights outgrow this CPU's caches, reading both at
    every step costs more than the separate GEMM. T = 24 and the rows from which
    ``FUSED_MIN_ROWS`` (measured just before) fuses, 8 at least and 32 at most: below
    that row count the fused step loses at any size, and in calls of 8 steps packing both
    weights in gate order outweighs it. (Built for AVX2 on a Zen 4, the fused step lost at
    8 rows at every H and won at 32; at 8 rows and T = 8 this probe had set 1 MiB, which
    kept (100, 64, 256) unfused: 40.4 against 37.0 ms fused. At 32 rows it ran 1-2 %
    behind at H = 256..512 with T = 24, 5.8 against 5.4 ms at H = 256 with T = 8.)"""
    levels = []
    forced = {**_ONE_THREAD, "FUSED_MIN_ROWS": (numba_lstm, 1)}
    rows = min(max(8, int(numba_lstm.FUSED_MIN_ROWS)), 32)
    for hidden in choice.candidates:
        shape = (_steps(24, scale), rows, int(hidden))
        on = _with({**forced, "FUSED_MAX_BYTES": (numba_lstm, NO_LIMIT)}, _forwards(*shape))
        off = _with({**forced, "FUSED_MAX_BYTES": (numba_lstm, 0)}, _forwards(*shape))
        levels.append(_compare(clock, 32 * int(hidden) ** 2, on, off))
    return levels, None


def packed_projection(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``PACKED_PROJECTION_MNK``: the input projection of an unfused call alone, ``T B =
    640`` rows (T = 20, B = 32) at ``H = I`` as listed (its quantity ``M N K = 2560 H^2``),
    on the packed kernel (its panels packed before, as a layer's inference keeps them) or
    on BLAS (the library in force: oneMKL from ``MKL_MIN_MNK``, measured before), split
    over every thread of the budget by rows as the calls split it. Only the projection
    differs between the two paths, so only it is timed: in the whole forward the loop's
    time hid the difference (on an Intel Xeon with MKL the whole call measured 2-6 %
    faster with MKL's projection, under :data:`~._tuning_choices.MIN_GAIN`, where the
    projection alone was 9-17 % faster at H = 384..768)."""
    levels = []
    parts = _probe_threads()
    rows = max(parts, int(round(640 * scale)))
    rng = np.random.default_rng(0)
    for hidden in choice.candidates:
        H = int(hidden)
        x = rng.standard_normal((rows, H)).astype(np.float32)
        weight = rng.uniform(-0.1, 0.1, (4 * H, H)).astype(np.float32)
        gates = np.empty((rows, 4 * H), np.float32)
        panels = _pack_cache.packed(weight, True, False)  # packed once, outside the clock

        def project(packed: bool, x=x, weight=weight, gates=gates, panels=panels) -> None:
            def share(part: int) -> None:
                project_inputs(x, weight, gates, part, parts, panels, packed)

            _threads.run_parts(share, parts)

        on = functools.partial(project, True)
        off = functools.partial(project, False)
        levels.append(_compare(clock, float(rows * H * 4 * H), on, off))
    return levels, None


def packed_grads(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``PACKED_GRADS_MAX_BYTES``: a training call (T = 16, B = 32, H = I as listed; its
    quantity both weights' bytes, ``32 H^2``) on every thread of the budget, its weight
    gradients on the packed kernel or on OpenBLAS."""
    levels = []
    for hidden in choice.candidates:
        step = _training(_steps(16, scale), 32, int(hidden))
        on = _with({"PACKED_GRADS_MAX_BYTES": (numba_lstm, NO_LIMIT)}, step)
        off = _with({"PACKED_GRADS_MAX_BYTES": (numba_lstm, 0)}, step)
        levels.append(_compare(clock, 32 * int(hidden) ** 2, on, off))
    return levels, None


def padded(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``MIN_PADDED``: a training call (T = 48, B = 32, H = I = 100) whose sequences all end
    so that the listed share of the ``T B`` rows is padding, its weight gradients on the
    gathered valid rows or on every row."""
    steps, batch, hidden = _steps(48, scale), 32, 100
    x, w_ih, w_hh, b, dy = _lstm(steps, batch, hidden)
    levels = []
    for share in choice.candidates:
        lengths = np.full(batch, max(1, round(steps * (1.0 - share))), np.int64)

        def step(lengths: np.ndarray = lengths) -> None:
            *_, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, b, lengths=lengths)
            numba_lstm.lstm_backward(dy, cache)

        gathered = _with({"MIN_PADDED": (_padding, 0.0)}, step)
        every = _with({"MIN_PADDED": (_padding, _INF)}, step)
        levels.append(_compare(clock, float(share), gathered, every))
    return levels, None


def small_gemm(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``SMALL_GEMM_MNK``: a whole training step of a small model, timed as a command runs
    it: an LSTM direction (T = 20, B = 32, H = 128, forward and backward on the kernels'
    threads) feeding an output layer's three GEMMs (``y (T B, H) @ W (H, V)``, and its two
    gradients; quantity ``M N K = T B H V``, V as listed) on the calling thread, or split
    over kioku's threads (:mod:`._split_gemm`)."""
    if _threads.max_threads() < 2:
        return [], "one thread for kioku's calls: nothing to split, default kept"
    steps, batch, hidden = _steps(20, scale), 32, 128
    rows = steps * batch
    x, w_ih, w_hh, b, _ = _lstm(steps, batch, hidden)
    rng = np.random.default_rng(2)
    levels = []
    for outputs in choice.candidates:
        w_out = rng.standard_normal((hidden, int(outputs))).astype(np.float32)
        mnk = float(rows * hidden * int(outputs))

        def step(w_out: np.ndarray = w_out, mnk: float = mnk) -> None:
            y, _, _, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, b)
            y2 = y.reshape(rows, hidden)
            logits = _split_gemm.gemm(y2, w_out)
            _split_gemm.gemm(y2, logits, trans_a=True)  # the weight's gradient
            dy2 = _split_gemm.gemm(logits, w_out, trans_b=True)  # the input's
            numba_lstm.lstm_backward(dy2.reshape(steps, batch, hidden), cache)

        held = _with({"SMALL_GEMM_MNK": (_threads, _INF)}, step)
        threaded = _with({"SMALL_GEMM_MNK": (_threads, 0.0)}, step)
        levels.append(_compare(clock, mnk, held, threaded))
    return levels, None


def tall_tile(choice, clock: Clock, scale: float) -> tuple[list[dict], str | None]:
    """``TALL_MIN_ROWS``: one packed product ``(M x 384) x (384 x 1536)`` (a step's
    recurrent product at H = 384, 2.4 MB of panels: beyond L2 here as a real layer's)
    on the 12 x 2-vector tile or the 6 x 4 one, at ``M`` rows, on the calling thread."""
    from . import _tiles
    from ._aligned import aligned_panels
    from ._packed import MR, NR, pack_panels, panels_shape

    if not _tiles.HAS_TALL:
        return [], "kernels built for 8-lane vectors: one tile shape, default kept"
    depth, width = 384, 1536 if scale >= 1 else 256
    rng = np.random.default_rng(3)
    panels = aligned_panels(*panels_shape(depth, width))
    pack_panels(rng.standard_normal((depth, width)).astype(np.float32), panels)
    tile = np.empty((MR, NR), np.float32)
    levels = []
    for rows in choice.candidates:
        a = rng.standard_normal((int(rows), depth)).astype(np.float32)
        c = np.empty((int(rows), width), np.float32)
        product = functools.partial(_tiles.packed_product, a, panels, c, 0.0, tile)
        tall = _with({"TALL_MIN_ROWS": (_tiles, 0)}, product)
        wide = _with({"TALL_MIN_ROWS": (_tiles, NO_LIMIT)}, product)
        levels.append(_compare(clock, float(rows), tall, wide))
    return levels, None
