"""The fast path's tunable choices: what each threshold is, where the kernels read it, its
hand-set default and the sizes its probe times (:mod:`._tuning_probes`). How they are
measured, stored and put in force: :mod:`._tuning`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

# A measured choice replaces the default only when it is faster by at least this share
# on the geometric mean of its levels: noise alone must not move a threshold (a time
# moves by 2-4 % from one process to the next on an idle machine; docs/performance.md).
MIN_GAIN = 0.05


class Choice(NamedTuple):
    """One tunable threshold.

    ``module``: where the kernels read it at call time (a module attribute, set by
    :func:`apply`); ``default``: the constant chosen by hand; ``candidates``: the
    sizes the probe times (see ``unit``), each a level at which the two paths are
    compared; ``rule``: ``"at_least"`` (the path it guards is taken when a call's
    quantity is at least the threshold) or ``"at_most"``; ``bounds``: the values a
    stored file may hold; ``probe``: the function of :mod:`._tuning_probes` that times
    the two paths at each candidate."""

    name: str
    module: str
    default: float
    candidates: tuple[float, ...]
    unit: str
    rule: str
    bounds: tuple[float, float]
    integer: bool
    probe: str
    what: str


NO_LIMIT = 1 << 62  # an "at_most" threshold that every call meets


def shown(value: float) -> str:
    """A choice's value as the logs print it: ``no limit`` from :data:`NO_LIMIT` on."""
    return "no limit" if value >= NO_LIMIT else f"{value:g}"


_THREADS = "kioku.kernels._threads"
_LSTM = "kioku.kernels.numba_lstm"
_PADDING = "kioku.kernels._padding"


# In the order they are measured: each probe runs with the choices above it in force.
# fmt: off
CHOICES: dict[str, Choice] = {c.name: c for c in (
    # first: the probes after it that time BLAS products run on the library chosen here
    Choice("MKL_MIN_MNK", "kioku.kernels._gemm", NO_LIMIT, (64, 256, 1024, 4096),
           "M N K of an output layer's three products, T B x H x V (T B = 320, H = 128, V as "
           "listed), one thread", "at_least", (0, NO_LIMIT), True, "mkl_gemm",
           "fewest M N K of a product run on oneMKL (the mkl extra) instead of OpenBLAS"),
    # first: every later probe runs on the tile chosen here
    Choice("TALL_MIN_ROWS", "kioku.kernels._tiles", NO_LIMIT, (8, 16, 32, 64),
           "rows M of a packed product (M x 384) x (384 x 1536), one thread", "at_least",
           (0, NO_LIMIT), True, "tall_tile",
           "fewest rows of a packed product run on the 12 x 2-vector tile (AVX-512)"),
    # first: its probe runs every split off, and the others' one-thread sides pipeline
    Choice("PIPELINE_MIN_FLOPS", _THREADS, 4e6, (64, 128, 192),
           "8 T B H I, one GEMM around the loop (H = I as listed, B = 1, T = 48)", "at_least",
           (0.0, 1e15), False, "pipeline",
           "a GEMM's flops from which a one-thread backward hands its weight gradients on"),
    Choice("MIN_ROWS", _THREADS, 4, (2, 4, 8, 16), "batch rows per thread", "at_least",
           (1, 4096), True, "split_rows", "fewest batch rows per thread worth a thread"),
    Choice("MIN_FLOPS", _THREADS, 4e6, (16, 32, 64, 128, 256),
           "8 B H^2, a step's recurrent flops (H as listed, 16 rows per thread)", "at_least",
           (0.0, 1e12), False, "split_flops", "a step's flops from which a batch is split"),
    Choice("DIRECTIONS_MIN_FLOPS", _THREADS, 2e5, (16, 32, 64, 128),
           "8 B H^2 per direction (H as listed, B = 16)", "at_least", (0.0, 1e12), False,
           "directions", "a direction's step flops from which two directions run at once"),
    Choice("GEMM_SPLIT_FLOPS", _THREADS, 2e7, (64, 128, 192, 256),
           "8 T B H I, one GEMM around the loops (H = I as listed, T = 48, B = 2)", "at_least",
           (0.0, 1e15), False, "gemm_split",
           "a GEMM's flops from which the GEMMs around an unsplit loop use every thread"),
    Choice("UNITS_MIN_FLOPS", _THREADS, 1e6, (64, 128, 192, 256),
           "8 B H^2, a step's recurrent flops (H as listed, B = 2, T = 32)", "at_least",
           (0.0, 1e12), False, "unit_split",
           "a step's flops from which an unsplit batch splits its steps by units"),
    Choice("UNITS_INFER_MIN_FLOPS", _THREADS, 1e6, (128, 256, 384, 512),
           "8 B H^2, a step's recurrent flops (H as listed, B = 1, T = 32)", "at_least",
           (0.0, 1e12), False, "unit_split_inference",
           "the same for inference calls"),
    Choice("UNITS_ROW_MIN_FLOPS", _THREADS, 1e6, (128, 192, 256, 320),
           "8 H^2, a step's recurrent flops (H as listed, B = 1, T = 48)", "at_least",
           (0.0, 1e12), False, "unit_split_row",
           "the same for training calls of one sequence"),
    Choice("FUSED_MIN_ROWS", _LSTM, 4, (1, 2, 4, 8, 16), "batch rows per thread (T = 35, H = 200)",
           "at_least", (1, 1 << 30), True, "fused",
           "fewest rows per thread from which each step projects its own inputs"),
    Choice("FUSED_MAX_BYTES", _LSTM, 8 << 20, (256, 384, 512, 768),
           "bytes of both weights, 32 H^2 (H as listed, T = 24, B = FUSED_MIN_ROWS in 8..32)",
           "at_most", (0, 1 << 40), True,
           "fused_bytes", "most weight bytes with which each step projects its own inputs"),
    Choice("PACKED_PROJECTION_MNK", _LSTM, 2048 * 256 * 1024, (128, 256, 384, 512, 768),
           "M N K of the input projection, T B I 4H (T B = 640, H = I as listed)", "at_most",
           (0, NO_LIMIT), True, "packed_projection",
           "largest unfused input projection on the packed kernel (BLAS above)"),
    Choice("MKL_UNITS_MIN_BYTES", _LSTM, NO_LIMIT, (256, 384, 512, 640, 1024),
           "bytes of weight_hh, 16 H^2 (H = I as listed, T = 20, 8 batch rows per thread), an "
           "inference call", "at_least", (0, NO_LIMIT), True, "mkl_units",
           "fewest recurrent weight bytes from which a split inference of at most 16 rows "
           "per thread splits each step by units on oneMKL's packed GEMM (the mkl extra)"),
    Choice("MKL_UNITS_WIDE_MIN_BYTES", _LSTM, NO_LIMIT, (384, 512, 640, 1024),
           "bytes of weight_hh, 16 H^2 (H = I as listed, T = 10, 32 batch rows per thread), "
           "an inference call", "at_least", (0, NO_LIMIT), True, "mkl_units_wide",
           "the same for a split inference of more than 16 rows per thread"),
    Choice("MKL_UNITS_UNSPLIT_MIN_BYTES", _LSTM, NO_LIMIT, (256, 384, 512, 1024),
           "bytes of weight_hh, 16 H^2 (H = I as listed, T = 20, B = 1), an inference call",
           "at_least", (0, NO_LIMIT), True, "mkl_units_unsplit",
           "the same for an inference whose batch is too small to split by rows"),
    Choice("MKL_ROWS_MIN_BYTES", _LSTM, NO_LIMIT, (384, 512, 640, 1024),
           "bytes of weight_hh, 16 H^2 (H = I as listed, T = 20, 10 batch rows per thread), "
           "a training call", "at_least", (0, NO_LIMIT), True, "mkl_rows",
           "fewest recurrent weight bytes from which a training call's per-step products "
           "run on oneMKL's packed GEMM (the mkl extra), each thread on its own rows"),
    Choice("PACKED_GRADS_MAX_BYTES", _LSTM, NO_LIMIT, (128, 256, 512, 1024),
           "bytes of both weights, 32 H^2 (H as listed, T = 16, B = 32)", "at_most",
           (0, NO_LIMIT), True, "packed_grads",
           "most weight bytes whose gradients use the packed kernel (OpenBLAS above)"),
    Choice("MIN_PADDED", _PADDING, 0.5, (0.2, 0.35, 0.5, 0.65),
           "share of a batch's T B rows that are padding (T = 48, B = 32, H = I = 100)",
           "at_least", (0.0, 2.0), False, "padded",
           "least share of padded rows from which the weight gradients use the valid rows"),
    Choice("SMALL_GEMM_MNK", _THREADS, 16e6, (12, 48, 196, 784),
           "M N K of an output layer's GEMM, T B H V (V as listed; T = 20, B = 32, H = 128), "
           "in a whole training step", "at_most", (0.0, 1e15), False, "small_gemm",
           "largest GEMM of a layer (an output layer's) run whole on the calling thread"),
)}
# fmt: on


def pick(choice: Choice, levels: list[dict]) -> float:
    """The threshold for ``choice`` from its probe's ``levels`` (each ``{"quantity",
    "on_s", "off_s"}``: seconds per call with the path the threshold guards taken and
    not taken). Each candidate threshold (the default, every level's quantity, and one
    past the last level) is scored by the geometric mean of the times it would give
    over the levels; the best replaces the default only if, on the levels where the two
    choose different paths, it is faster by :data:`MIN_GAIN` (geometric mean)."""
    if not levels:
        return choice.default
    quantities = sorted(level["quantity"] for level in levels)
    past = 2 * quantities[-1] if choice.rule == "at_least" else quantities[0] / 2
    low, high = choice.bounds
    thresholds = [choice.default] + quantities + [min(max(past, low), high)]

    def taken(level: dict, threshold: float) -> bool:
        q = level["quantity"]
        return q >= threshold if choice.rule == "at_least" else q <= threshold

    def seconds(level: dict, threshold: float) -> float:
        return level["on_s"] if taken(level, threshold) else level["off_s"]

    def score(threshold: float, among: list[dict]) -> float:
        return sum(math.log(seconds(level, threshold)) for level in among) / len(among)

    best = min(thresholds, key=lambda t: score(t, levels))  # ties: the first, the default
    differ = [level for level in levels if taken(level, best) != taken(level, choice.default)]
    if differ and score(best, differ) > score(choice.default, differ) + math.log1p(-MIN_GAIN):
        best = choice.default
    return int(best) if choice.integer else float(best)


def confirmed(
    choice: Choice, first: list[dict], second: list[dict], third: list[dict] | None = None
) -> tuple[float, list[dict]]:
    """The threshold for ``choice`` from the measurements of its levels, ``first`` having
    departed from the default: the default where the later ones mostly would keep it
    (``second`` alone, or both ``second`` and ``third``: the departure did not hold,
    noise), else :func:`pick` on all of them measured as one (each level's times the
    geometric mean). ``third``, measured where ``second`` alone kept the default, breaks
    the tie: two measurements of three decide. Returns the threshold and the levels it was
    chosen from. On a 2-core Intel Xeon guest whose times swing 20-30 % from one block to
    the next, two tunings 5 hours apart moved three thresholds in opposite directions
    (``TALL_MIN_ROWS`` at 32 rows: with/without 1.14 in one, 0.81 in the other); and a
    second measurement alone missed a 6-9 % gain that three in four measured
    (``PACKED_GRADS_MAX_BYTES`` at H = 512..1024 with MKL in force, 2026-12-08)."""
    measured = [first, second] + ([] if third is None else [third])
    sizes = [[level["quantity"] for level in m] for m in measured]
    if any(size != sizes[0] for size in sizes):
        return choice.default, second
    combined = [
        {"quantity": levels[0]["quantity"],
         "on_s": math.exp(sum(math.log(level["on_s"]) for level in levels) / len(levels)),
         "off_s": math.exp(sum(math.log(level["off_s"]) for level in levels) / len(levels))}
        for levels in zip(*measured)
    ]  # fmt: skip
    later = measured[1:]
    departing = sum(pick(choice, m) != choice.default for m in later)
    if 2 * departing < len(later):
        return choice.default, combined
    return pick(choice, combined), combined
