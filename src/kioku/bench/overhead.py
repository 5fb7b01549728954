"""The fixed cost of one inference call at batch 1: checks, allocation, dispatch.

The network is as small as a call gets (T = 1, B = 1, I = H = 8), so nearly all of the
time is what a call costs before and after its arithmetic. kioku's ``nn.LSTM`` runs in
eval mode inside ``kioku.nn.no_grad()`` (no cache kept); PyTorch's ``nn.LSTM`` under
``torch.inference_mode()``; ONNX Runtime one LSTM node. Each call is timed on its own
and the median is reported, so a stray interruption does not move the figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from . import workloads
from .workloads import Shape

SHAPE = Shape(1, 1, 8)


def per_call_us(fn: Callable[[], object], calls: int) -> dict[str, float]:
    """Median, 10th and 90th percentile of ``calls`` timed calls, in microseconds."""
    for _ in range(max(10, calls // 10)):  # warm
        fn()
    times = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        fn()
        times.append((clock() - start) / 1e3)
    times.sort()
    return {
        "median_us": statistics.median(times),
        "p10_us": times[len(times) // 10],
        "p90_us": times[(9 * len(times)) // 10],
        "calls": calls,
    }


def call_overhead(calls: int = 3000, peers: bool = True) -> dict:
    """``{"shape": ..., "kioku": {...}, "torch": {...}, "onnxruntime": {...}}``: per-call
    times (see :func:`per_call_us`) of one forward of ``x (1, 1, 8)``."""
    state, x = workloads.torch_state(SHAPE), workloads.inputs(SHAPE)
    model = workloads.kioku_model(SHAPE, state)
    model.eval()

    def kioku_call() -> None:
        with workloads.no_grad():
            model(x)

    result = {"shape": "T=1 B=1 I=H=8", "kioku": per_call_us(kioku_call, calls)}
    if peers:
        result["torch"] = per_call_us(workloads.torch_infer(SHAPE, state, x), calls)
        result["onnxruntime"] = per_call_us(workloads.ort_infer(SHAPE, state, x), calls)
    return result
