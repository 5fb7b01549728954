"""First-call latency of the compiled kernels, measured apart from the steady state.

Each measurement is a fresh interpreter that imports the backend and times its first
and second float32 forward + backward on a small LSTM. ``cold``: an empty JIT cache
(``NUMBA_CACHE_DIR`` pointed at a new folder), so the first call compiles; ``cached``:
the same folder again, so the first call loads machine code from disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_PROBE = """
import json, time
t0 = time.perf_counter()
import numpy as np
from kioku.kernels import numba_lstm as k
t1 = time.perf_counter()
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 4, 16)).astype(np.float32)
w_ih = rng.standard_normal((64, 16)).astype(np.float32)
w_hh = rng.standard_normal((64, 16)).astype(np.float32)
def call():
    y, h, c, cache = k.lstm_forward(x, w_ih, w_hh)
    k.lstm_backward(np.ones_like(y), cache)
t2 = time.perf_counter(); call(); t3 = time.perf_counter(); call(); t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "second_call_s": t4 - t3}))
"""


def _probe(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=600
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_call_latency() -> dict:
    """``{"cold": {...}, "cached": {...}}``, each with ``import_s``, ``first_call_s`` and
    ``second_call_s`` (seconds)."""
    with tempfile.TemporaryDirectory(prefix="kioku-jit-") as folder:
        return {"cold": _probe(folder), "cached": _probe(folder)}
