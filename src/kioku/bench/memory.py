"""Peak memory of one training step, measured in a fresh subprocess per library.

Method (Linux): the subprocess builds the model, runs two warm-up steps, resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``), reads RSS, runs one step, and
reads the peak (``VmHWM``). With ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB every large
buffer is its own mapping, returned to the OS when freed, so RSS follows live memory
for both libraries alike (PyTorch's CPU allocator also uses malloc). kioku's
``nn.LSTM`` keeps the previous step's caches until its next forward replaces them, and
its backward's gate-gradient scratch across steps, so for kioku the bytes of those
retained arrays are added back (they are part of the baseline RSS but are a cost of
training). Where ``/proc`` is missing, kioku falls back
to ``tracemalloc`` (NumPy reports its allocations to it) and PyTorch is not measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

from .workloads import Shape, inputs, kioku_train, torch_state, torch_train

_STATUS = "/proc/self/status"


def _status_kib(field: str) -> int:
    with open(_STATUS) as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def retained_bytes(model) -> int:
    """Bytes of the arrays a kioku model keeps alive between calls (its caches and the
    scratch its backward keeps)."""
    seen, total = set(), 0

    def visit(obj) -> None:
        nonlocal total
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None else obj.base
            if isinstance(base, np.ndarray) and id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
        elif isinstance(obj, list | tuple):
            for item in obj:
                visit(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                visit(item)
        elif hasattr(obj, "__dataclass_fields__"):
            for name in obj.__dataclass_fields__:
                if name not in ("x", "weight_ih", "weight_hh", "weight_hr"):
                    visit(getattr(obj, name))

    visit(getattr(model, "caches", None))
    visit(getattr(model, "_run", None))
    visit(getattr(model, "_dgates_buffers", None))  # the backward's scratch, kept
    return total


def measure_here(lib: str, shape: Shape) -> dict:
    """Run in this process (meant to be a fresh one): the peak bytes of one step."""
    state, x = torch_state(shape), inputs(shape)
    step = kioku_train(shape, state, x) if lib == "kioku" else torch_train(shape, state, x)
    step()
    step()
    gc.collect()
    if os.path.exists("/proc/self/clear_refs"):
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        step()
        peak = _status_kib("VmHWM")
        retained = retained_bytes(step.model) if lib == "kioku" else 0
        return {
            "peak_bytes": (peak - before) * 1024 + retained,
            "retained_bytes": retained,
            "method": "rss-hwm",
        }
    if lib != "kioku":
        return {"peak_bytes": None, "method": "unavailable"}
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    retained = retained_bytes(step.model)
    return {"peak_bytes": peak + retained, "retained_bytes": retained, "method": "tracemalloc"}


def measure(lib: str, shape: Shape, timeout: float = 600.0) -> dict:
    """Measure ``lib`` (``kioku`` or ``torch``) on ``shape`` in a fresh subprocess."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    spec = f"{shape.steps},{shape.batch},{shape.hidden},{shape.layers},{int(shape.bidirectional)}"
    cmd = [sys.executable, "-m", "kioku.bench.memory", lib, spec]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        return {"peak_bytes": None, "method": "failed", "error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", choices=["kioku", "torch"])
    parser.add_argument("shape", help="T,B,H,layers,bidirectional")
    args = parser.parse_args(argv)
    T, B, H, L, bi = (int(v) for v in args.shape.split(","))
    result = measure_here(args.lib, Shape(T, B, H, L, bool(bi)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
