"""Where one float32 inference call's time goes, in pieces switched on and off (a probe).

    python benchmarks/infer_step_probe.py [--shape 35,20,200] [--rounds 12]

Runs the compiled step of a fused inference call (every step projects its own inputs)
over T steps on one thread, in five variants alternating in one process, and prints
the CPU time (``time.thread_time``) of each, minimum and median over the rounds:

- ``plain step``: the two products as two passes of the packed kernel over weights
  packed in 64-column panels (``_packed.packed_gemm``: the input projection, then the
  recurrent product added to it), then the gate pass: what main did before
  ``_gate_order``;
- ``gate step``: the two products as one pass over weights packed in gate order
  (``_gate_order.pair_product``), then the same gate pass: what the library does now;
- ``plain gemm``, ``gate gemm``: the same without the gate pass;
- ``gates``: the gate pass alone.

The gate pass here is the library's (same arithmetic, same flags) written out, so the
pieces can be switched. A probe for tuning on a shared machine, not a benchmark: the
figures that count come from ``kioku bench`` on an idle one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from kioku.kernels._gate_order import gate_panels_shape, pack_gate_panels, pair_product
from kioku.kernels._packed import MR, NR, pack_panels, packed_gemm, panels_shape
from kioku.kernels._primitives import FAST_MATH, infer_cell_row


@njit(nogil=True, error_model="numpy", fastmath=FAST_MATH)
def run_steps(x, plain_ih, plain_hh, gate_ih, gate_hh, h0, y, c, a, sb, tile, gate, gemm, gates):
    """``T`` steps of rows ``x (T, B, I)``, hidden state into ``y (T, B, H)``."""
    T, B = x.shape[0], x.shape[1]
    H = c.shape[1]
    h_prev = h0
    for t in range(T):
        if gemm and gate:
            pair_product(x[t], gate_ih, h_prev, gate_hh, a, 0, B, tile)
        elif gemm:
            packed_gemm(x[t], plain_ih, a, 0.0, tile)
            packed_gemm(h_prev, plain_hh, a, 1.0, tile)
        if gates:
            for b in range(B):
                infer_cell_row(a[b], sb, c[b], y[t, b], H, H)
        h_prev = y[t]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="35,20,200", help="T,B,H (I = H)")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    T, B, H = (int(v) for v in args.shape.split(","))
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((T, B, H)).astype(f32)
    w_ih = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(f32)
    w_hh = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(f32)
    plain_ih, plain_hh = (np.empty(panels_shape(H, 4 * H), f32) for _ in range(2))
    gate_ih, gate_hh = (np.empty(gate_panels_shape(H, H), f32) for _ in range(2))
    pack_panels(w_ih.T, plain_ih)
    pack_panels(w_hh.T, plain_hh)
    pack_gate_panels(w_ih, gate_ih)
    pack_gate_panels(w_hh, gate_hh)
    sb = (rng.standard_normal(4 * H) * 0.1).astype(f32)
    h0 = np.zeros((B, H), f32)
    y = np.zeros((T, B, H), f32)
    c = np.zeros((B, H), f32)
    a = np.zeros((B, 4 * H), f32)
    tile = np.zeros((MR, NR), f32)
    variants = {  # (gate order, products, gate pass)
        "plain step": (False, True, True),
        "gate step": (True, True, True),
        "plain gemm": (False, True, False),
        "gate gemm": (True, True, False),
        "gates": (False, False, True),
    }
    weights = (plain_ih, plain_hh, gate_ih, gate_hh, h0, y, c, a, sb, tile)
    outputs = {}
    for name, flags in variants.items():
        if flags[1] and flags[2]:
            c[:] = 0
            run_steps(x, *weights, *flags)
            outputs[name] = y.copy()
    diff = np.abs(outputs["gate step"] - outputs["plain step"]).max()
    flops = 2.0 * T * B * H * 8 * H
    calls = max(1, int(0.1 / (flops / 100e9)))  # about 0.1 s a round at 100 GFLOP/s
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, flags in variants.items():
            start = time.thread_time()
            for _ in range(calls):
                run_steps(x, *weights, *flags)
            times[name].append((time.thread_time() - start) / calls)
    print(f"T={T} B={B} H={H}, one thread, {args.rounds} rounds; gate vs plain max |dy| {diff:.1e}")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        rate = f"{flops / best / 1e9:6.1f} GFLOP/s" if "gates" not in name else ""
        print(f"  {name:10s} min {best * 1e3:8.3f} ms  median {median * 1e3:8.3f} ms  {rate}")
    for piece in ("step", "gemm"):
        plain, gate = times["plain " + piece], times["gate " + piece]
        ratio_min = min(gate) / min(plain)
        ratio_median = statistics.median(gate) / statistics.median(plain)
        print(f"  gate/plain {piece}: {ratio_min:.3f} (min), {ratio_median:.3f} (median)")


if __name__ == "__main__":
    main()
