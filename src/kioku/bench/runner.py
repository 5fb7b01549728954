"""One benchmark run: every shape, kioku against PyTorch (training) and ONNX Runtime
(inference), interleaved, plus the peak sgemm rate, training peak memory, the fixed
cost of a batch-1 call, and how busy the machine was (:mod:`kioku.bench.load`), which
decides whether the run is valid."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

from ..data.atomic import write_text_atomic
from . import latency, load, memory, overhead, timing, workloads
from .workloads import Shape


def machine_info() -> dict:
    """The machine a run measured: CPU model and the instruction-set flags that matter,
    library versions, threads, BLAS, load, and the kernels' choices in force (tuned on
    this machine, from which file, or the defaults: :mod:`kioku.kernels._tuning`)."""
    from ..kernels import _tuning

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cores": os.cpu_count(),
    }
    info["cpu"], info["cpu_flags"] = _tuning.cpu()
    target = _tuning.machine().get("target")
    if target:  # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES: not the host's instruction set
        info["kernel_target"] = target
    for module in ("torch", "onnxruntime", "numba", "onnx"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    from .. import kernels

    info["kioku_backend"] = kernels.backend_name()
    try:
        from ..kernels import _threads

        info["kioku_threads"] = _threads.max_threads()
        info["usable_cores"] = _threads.usable_cores()
    except ImportError:
        pass
    try:
        from ..kernels import _blas

        info["blas"] = f"{os.path.basename(_blas.LIBRARY or 'none')} ({_blas.corename()})"
        info["mkl"] = _blas.MKL.version if _blas.MKL is not None else None
    except ImportError:
        info["blas"] = None
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    info["tuning"] = _tuning.in_force()
    return info


def _check(a: Callable[[], np.ndarray], b: Callable[[], np.ndarray]) -> float:
    """Max |a - b| of the two libraries' outputs: both ran the same weights."""
    return float(np.abs(np.asarray(a()) - np.asarray(b())).max())


def _plan(shape: Shape) -> dict | None:
    """How kioku's thread rule splits this shape's layers (see kioku.kernels._threads)."""
    try:
        from ..kernels._threads import plan
    except ImportError:
        return None
    step_flops = 8.0 * shape.batch * shape.hidden * shape.hidden
    return plan(shape.batch, step_flops, shape.directions)._asdict()


def bench_shape(
    shape: Shape,
    repeats: int,
    block_s: float,
    pause_s: float,
    measure_memory: bool,
    log: Callable[[str], None],
) -> dict:
    """Time training (kioku vs PyTorch) and inference (kioku vs ONNX Runtime, PyTorch)."""
    state, x = workloads.torch_state(shape), workloads.inputs(shape)
    row: dict = {
        "shape": shape.name,
        "T": shape.steps,
        "B": shape.batch,
        "H": shape.hidden,
        "layers": shape.layers,
        "bidirectional": shape.bidirectional,
        "tokens": shape.steps * shape.batch,
        "forward_gflop": shape.forward_flops() / 1e9,
        "training_gflop": shape.training_flops() / 1e9,
    }
    row["kioku_plan"] = _plan(shape)
    reference, reference_flops = timing.sgemm_reference()
    sgemm: dict[str, float] = {}

    def timed(fns: dict, task: str) -> dict:
        """``fns`` interleaved with the reference sgemm, whose median rate goes to
        ``sgemm[task]``."""
        result = timing.interleaved({**fns, "sgemm": reference}, repeats, block_s, pause_s)
        sgemm[task] = reference_flops / result.pop("sgemm")["median_s"] / 1e9
        return result

    log(f"{shape.name}: training")
    row["train"] = timed(
        {
            "kioku": workloads.kioku_train(shape, state, x),
            "torch": workloads.torch_train(shape, state, x),
        },
        "train",
    )
    log(f"{shape.name}: inference")
    infer = {
        "kioku": workloads.kioku_infer(shape, state, x),
        "onnxruntime": workloads.ort_infer(shape, state, x),
        "torch": workloads.torch_infer(shape, state, x),
    }
    row["max_abs_diff"] = {
        "onnxruntime": _check(infer["kioku"], infer["onnxruntime"]),
        "torch": _check(infer["kioku"], infer["torch"]),
    }
    row["infer"] = timed(infer, "infer")
    row["sgemm_gflops"] = sgemm  # the reference's median rate in the same rounds
    # bytes an inference left behind for a backward: 0 once nn honours no_grad()
    row["kioku_infer_retained_bytes"] = memory.retained_bytes(infer["kioku"].model)
    if measure_memory:
        log(f"{shape.name}: training peak memory")
        row["train_peak_memory"] = {lib: memory.measure(lib, shape) for lib in ("kioku", "torch")}
    return row


def run_benchmark(
    shapes: tuple[Shape, ...] = workloads.SHAPES,
    repeats: int = 5,
    block_s: float = 0.25,
    pause_s: float = 0.3,
    measure_memory: bool = True,
    log: Callable[[str], None] = print,
    quiet_gflops: float | None = None,
    probe: load.LoadProbe | None = None,
    idle_s: float = load.BEFORE_S,
    overhead_calls: int = 3000,
) -> dict:
    """The whole run; returns the JSON-able result (see :mod:`kioku.bench.report`).

    ``quiet_gflops``: the machine's sgemm rate when idle, if known; ``probe`` reads the
    cores' busy time (default: ``/proc/stat``); ``idle_s``: the window measured before
    the run. ``result["load"]["valid"]`` says whether the figures may be published."""
    probe = probe or load.LoadProbe()
    started = time.time()
    log(f"machine load before the run ({idle_s:.0f} s)")
    before = load.measure_idle(probe, idle_s)
    run_start = probe.sample()
    peak = timing.peak_sgemm()
    log(f"peak sgemm: {peak['peak_gflops']:.1f} GFLOP/s")
    rows, by_shape = [], {}
    for shape in shapes:
        shape_start = probe.sample()
        rows.append(bench_shape(shape, repeats, block_s, pause_s, measure_memory, log))
        by_shape[shape.name] = load.others_share(shape_start, probe.sample())
    log("fixed cost of one batch-1 call")
    call_cost = overhead.call_overhead(overhead_calls)
    first_call = None
    if measure_memory:  # full runs only: two fresh interpreters, one of them compiling
        log("first-call latency of the compiled kernels")
        first_call = latency.first_call_latency()
    peak_after = timing.peak_sgemm()
    during = load.others_share(run_start, probe.sample())
    for row in rows:
        for task, flops in (("train", row["training_gflop"]), ("infer", row["forward_gflop"])):
            for stats in row[task].values():
                stats["tokens_per_s"] = row["tokens"] / stats["median_s"]
                stats["pct_peak"] = 100.0 * flops / stats["median_s"] / peak["peak_gflops"]
    validity = load.verdict(
        before,
        during,
        by_shape,
        peak["peak_gflops"],
        peak_after["peak_gflops"],
        quiet_gflops,
        {row["shape"]: min(row["sgemm_gflops"].values()) for row in rows},
    )
    return {
        "machine": machine_info(),
        "load": validity,
        "peak_sgemm": peak,
        "peak_sgemm_after": peak_after,
        "settings": {
            "repeats": repeats,
            "block_s": block_s,
            "pause_s": pause_s,
            "torch_threads": workloads.peer_threads(),
            "onnxruntime_intra_op_threads": workloads.peer_threads(),
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "seconds": time.time() - started,
        "call_overhead": call_cost,
        "first_call": first_call,
        "results": rows,
    }


def write_json(result: dict, path: str) -> None:
    """Write ``result`` atomically (temp file + rename), as strict JSON (a NaN or an
    infinity as ``null``, named under ``"nonfinite"``)."""
    from ..data.strict_json import dumps

    write_text_atomic(path, dumps(result, indent=1) + "\n")
