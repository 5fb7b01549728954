"""Interleaved timing (A B A B ...) and the machine's peak sgemm rate.

Each round gives every library, in turn, an idle pause (so the previous library's
spinning worker threads go to sleep and do not steal a core), a warm-up block, then a
timed block of calls; a library's figure is the median over the rounds of its
per-call time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def calls_for(fn: Callable[[], object], target_s: float) -> int:
    """How many calls of ``fn`` fill about ``target_s`` seconds (after two warm-up calls)."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(round(target_s / once)))


def interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 5,
    block_s: float = 0.2,
    pause_s: float = 0.3,
) -> dict[str, dict[str, float]]:
    """Time each of ``fns`` interleaved over ``repeats`` rounds.

    Returns, per name, ``median_s`` (median seconds per call), ``min_s``, ``max_s``,
    ``calls`` per block and ``repeats``.
    """
    counts = {name: calls_for(fn, block_s) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(pause_s)
            for _ in range(max(1, counts[name] // 4)):  # warm this library in a block
                fn()
            start = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / counts[name])
    return {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "max_s": max(values),
            "calls": counts[name],
            "repeats": repeats,
        }
        for name, values in samples.items()
    }


def peak_sgemm(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best float32 GEMM rate (GFLOP/s) of NumPy's BLAS and, if installed, PyTorch's
    at ``size x size x size`` on the threads they use by default here."""
    rates = {}
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.T.copy()
    out = np.empty_like(a)
    flops = 2.0 * size**3

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flops / min(times) / 1e9

    rates["numpy_gflops"] = best(lambda: np.matmul(a, b, out=out))
    try:
        import torch
    except ImportError:
        pass
    else:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        rates["torch_gflops"] = best(lambda: torch.mm(ta, tb, out=tout))
    rates["peak_gflops"] = max(rates.values())
    return rates


# The size of the sgemm timed beside the libraries in every round (as peak_sgemm's)
REFERENCE_SIZE = 2048


def sgemm_reference(size: int | None = None) -> tuple[Callable[[], object], float]:
    """A NumPy float32 GEMM of ``size`` (default :data:`REFERENCE_SIZE`) cubed to time in
    the same rounds as the libraries, and its flops: its rate there is the machine's
    during those rounds (a neighbour on the host, invisible to ``/proc/stat``, slows it
    as it slows them)."""
    size = size or REFERENCE_SIZE
    a = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    b = a.T.copy()
    out = np.empty_like(a)
    return (lambda: np.matmul(a, b, out=out)), 2.0 * size**3
