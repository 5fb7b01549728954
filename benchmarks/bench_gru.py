"""Benchmark kioku's GRU against PyTorch's ``nn.GRU``: training (forward + backward) and
inference, on the six shapes of the README's LSTM table, interleaved, median of 5.

    python benchmarks/bench_gru.py [--quick] [--repeats N] [--torch-threads N] [--out DIR]

Writes ``DIR/bench_gru.json`` and ``DIR/bench_gru.md`` (default ``bench-results``). Both
libraries get the same random weights; their outputs are compared before timing. Judge
the figures only on an idle machine (DESIGN.md section 5): record the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from kioku import kernels
from kioku.bench.timing import interleaved, peak_sgemm
from kioku.bench.workloads import QUICK_SHAPES, SHAPES, Shape, inputs
from kioku.data.atomic import write_json_atomic, write_text_atomic
from kioku.nn import GRU


def gru_state(shape: Shape, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights with ``nn.GRU``'s names, uniform(-1/sqrt(H), 1/sqrt(H))."""
    rng = np.random.default_rng(seed)
    bound, H = 1.0 / np.sqrt(shape.hidden), shape.hidden
    state, size_in = {}, H
    for layer in range(shape.layers):
        for direction in range(shape.directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            dims = {"weight_ih": (3 * H, size_in), "weight_hh": (3 * H, H)}
            dims.update(bias_ih=(3 * H,), bias_hh=(3 * H,))
            for name, size in dims.items():
                state[name + sfx] = rng.uniform(-bound, bound, size).astype(np.float32)
        size_in = H * shape.directions
    return state


def kioku_gru(shape: Shape, state: dict[str, np.ndarray]) -> GRU:
    model = GRU(shape.hidden, shape.hidden, shape.layers, bidirectional=shape.bidirectional)
    model.load_state_dict(state)
    return model


def torch_gru(shape: Shape, state: dict[str, np.ndarray], threads: int):
    import torch

    torch.set_num_threads(threads)
    model = torch.nn.GRU(
        shape.hidden, shape.hidden, shape.layers, bidirectional=shape.bidirectional
    )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def workloads(shape: Shape, threads: int) -> dict[str, Callable[[], object]]:
    """``kioku train``, ``torch train``, ``kioku infer``, ``torch infer`` callables."""
    import torch

    state, x = gru_state(shape), inputs(shape)
    ours, peer = kioku_gru(shape, state), torch_gru(shape, state, threads)
    xt = torch.from_numpy(x)
    dy = np.ones((shape.steps, shape.batch, shape.hidden * shape.directions), np.float32)
    with torch.inference_mode():
        expected = peer(xt)[0].numpy()
    diff = float(np.abs(ours.eval()(x)[0] - expected).max())
    if diff > 1e-4:
        raise RuntimeError(f"{shape.name}: kioku and torch differ by {diff:.2e} before timing")

    def kioku_train() -> None:
        ours.train()
        ours.zero_grad()
        ours(x)
        ours.backward(dy, need_dx=False)

    def torch_train() -> None:
        peer.zero_grad(set_to_none=False)  # gradient buffers persist, as kioku's do
        peer(xt)[0].sum().backward()

    def kioku_infer() -> np.ndarray:
        ours.eval()
        return ours(x)[0]

    def torch_infer() -> np.ndarray:
        with torch.inference_mode():
            return peer(xt)[0].numpy()

    return {
        "kioku train": kioku_train,
        "torch train": torch_train,
        "kioku infer": kioku_infer,
        "torch infer": torch_infer,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small shapes, short blocks")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--torch-threads", type=int, default=2, help="PyTorch's threads")
    parser.add_argument("--out", default="bench-results", help="folder for the results")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected an integer >= 1, found {args.repeats}")
    shapes = QUICK_SHAPES if args.quick else SHAPES
    block_s, pause_s = (0.02, 0.01) if args.quick else (0.2, 0.3)
    rows, results = [], []
    for shape in shapes:
        timed = interleaved(workloads(shape, args.torch_threads), args.repeats, block_s, pause_s)
        ms = {name: t["median_s"] * 1e3 for name, t in timed.items()}
        results.append({"shape": shape.name, "timings": timed})
        rows.append(
            f"| {shape.name} | {ms['kioku train']:.3g} | {ms['torch train']:.3g} | "
            f"{ms['torch train'] / ms['kioku train']:.2f}x | {ms['kioku infer']:.3g} | "
            f"{ms['torch infer']:.3g} | {ms['torch infer'] / ms['kioku infer']:.2f}x |"
        )
        print(rows[-1], flush=True)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average": list(os.getloadavg()),
        "kernels": kernels.backend_name(),
        "kioku_threads": os.environ.get("KIOKU_NUM_THREADS", "1"),
        "torch_threads": args.torch_threads,
        "repeats": args.repeats,
        "peak_sgemm": {} if args.quick else peak_sgemm(),
        "results": results,
    }
    header = (
        "| shape | train: kioku ms | torch ms | speed-up "
        "| infer: kioku ms | torch ms | speed-up |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "bench_gru.json"), report)
    write_text_atomic(
        os.path.join(args.out, "bench_gru.md"),
        f"kioku GRU vs torch.nn.GRU, {report['when']}, load {report['load_average']}\n\n"
        + header
        + "\n".join(rows)
        + "\n",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
