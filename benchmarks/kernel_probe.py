"""Per-thread efficiency of kioku's compiled LSTM loops against its peers, in CPU time.

    python benchmarks/kernel_probe.py [--repeats N] [--shapes 0,3] [--what train,infer]

Everything runs on ONE thread (``KIOKU_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``,
``torch.set_num_threads(1)``, ONNX Runtime ``intra_op_num_threads=1``) and each call is
timed by the CPU time this process used (``time.process_time``), not by the wall clock,
so that other jobs on the machine change the figures less. The libraries are
interleaved (one call each per round, after a warm-up block) and the median of the
rounds is kept. Prints, per shape of :data:`kioku.bench.workloads.SHAPES`, kioku's speed
relative to PyTorch (training) and to ONNX Runtime (inference) as the issue's tables
state it: the peer's CPU time per call over kioku's (above 1.0 kioku is faster).
Inference is timed twice: through ``kioku.nn`` in eval mode inside ``no_grad()`` (as
``kioku bench`` does) and straight on the kernels with ``keep_cache=False``.

The kernels run with the choices tuned for a budget of one thread (``kioku.nn.tuning``:
the stored file of this machine for that budget, measured first where there is none, as
a ``kioku`` command does); without that, the defaults, fitted on one AMD EPYC, would
decide the paths (on a 2-core Intel Xeon they fused each step's input projection up to
8 MiB of weights, where its two-thread tuning found fusing slower from 2 MiB).

An indicative probe for tuning kernels, not a result: CPU time on a busy machine still
suffers from shared caches and memory bandwidth, and one thread is not what users run.
``kioku bench`` on an idle machine is the measurement that counts.
"""

from __future__ import annotations

import argparse
import os

os.environ["KIOKU_NUM_THREADS"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from kioku.bench import workloads  # noqa: E402


def cpu_seconds(fn: Callable[[], object], calls: int) -> float:
    """CPU time of this process per call of ``fn``, over ``calls`` calls."""
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def probe(fns: dict[str, Callable[[], object]], repeats: int, budget_s: float) -> dict:
    """Median CPU seconds per call of each of ``fns``, interleaved over ``repeats`` rounds
    of about ``budget_s`` CPU seconds per library each."""
    calls = {}
    for name, fn in fns.items():
        for _ in range(2):  # warm-up: compilation, packing, allocator
            fn()
        once = max(cpu_seconds(fn, 1), 1e-6)
        calls[name] = max(1, int(budget_s / once))
    rounds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            rounds[name].append(cpu_seconds(fn, calls[name]))
    return {name: statistics.median(times) for name, times in rounds.items()}


def kernel_infer(shape: workloads.Shape, state: dict, x) -> Callable[[], object]:
    """The stack run straight on the kernels with ``keep_cache=False`` (what ``kioku.nn``
    calls inside ``no_grad()`` once it passes ``keep_cache``): layer by layer, directions
    one after the other, outputs concatenated."""
    import numpy as np

    from kioku import kernels

    lstm_forward = kernels.backend().lstm_forward
    weights = []
    for layer in range(shape.layers):
        for direction in range(shape.directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            bias = state["bias_ih" + sfx] + state["bias_hh" + sfx]
            weights.append((state["weight_ih" + sfx], state["weight_hh" + sfx], bias))

    def run() -> object:
        inputs = x
        for layer in range(shape.layers):
            outs = []
            for direction in range(shape.directions):
                w_ih, w_hh, bias = weights[layer * shape.directions + direction]
                reverse = bool(direction)
                y = lstm_forward(inputs, w_ih, w_hh, bias, reverse=reverse, keep_cache=False)[0]
                outs.append(y)
            inputs = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        return inputs

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.05, help="CPU s per library per round")
    parser.add_argument("--shapes", default="", help="indices into SHAPES, e.g. 0,3")
    parser.add_argument("--what", default="train,infer")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from kioku.nn import tuning

    print(f"kernel choices: {tuning.prepare()['source']}")
    chosen = [int(k) for k in args.shapes.split(",") if k] or range(len(workloads.SHAPES))
    what = args.what.split(",")
    print("single-thread CPU time per call (ms), median; speed = peer / kioku (> 1: kioku faster)")
    for index in chosen:
        shape = workloads.SHAPES[index]
        state, x = workloads.torch_state(shape), workloads.inputs(shape)
        line = f"[{index}] {shape.name:<24}"
        if "train" in what:
            fns = {
                "kioku": workloads.kioku_train(shape, state, x),
                "torch": workloads.torch_train(shape, state, x, threads=1),
            }
            t = probe(fns, args.repeats, args.budget)
            ratio = t["torch"] / t["kioku"]
            line += f" train {t['kioku'] * 1e3:8.3f} / {t['torch'] * 1e3:8.3f} = {ratio:5.2f}x"
        if "infer" in what:
            fns = {
                "kioku": workloads.kioku_infer(shape, state, x),
                "kernel": kernel_infer(shape, state, x),
                "ort": workloads.ort_infer(shape, state, x, threads=1),
            }
            t = probe(fns, args.repeats, args.budget)
            ratio, kernel = t["ort"] / t["kioku"], t["ort"] / t["kernel"]
            line += f"   infer {t['kioku'] * 1e3:8.3f} / {t['ort'] * 1e3:8.3f} = {ratio:5.2f}x"
            line += f" (kernels, no cache: {t['kernel'] * 1e3:8.3f} = {kernel:5.2f}x)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
