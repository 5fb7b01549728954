"""``kioku bench --sweep``: how training's cost grows with the width and the batch.

Training with the input gradient (forward, then backward of the summed output with
``dx``: a layer inside a network), T = 50, I = H: B = 32 with H from 32 to 1024, and
H = 256 with B from 1 to 256. At each point kioku and PyTorch (when installed) run
interleaved with NumPy's 2048^3 sgemm in the same rounds; the figures are medians of
the rounds: kioku vs PyTorch, and kioku's rate as a share of that sgemm's rate (the
target is at H >= 512, where the GEMMs are big enough to reach it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import load, timing, workloads
from .workloads import Shape

STEPS = 50
WIDTHS = (32, 64, 128, 256, 512, 1024)  # at batch 32
BATCHES = (1, 4, 16, 64, 256)  # at H = 256
SWEEP = tuple(Shape(STEPS, 32, h) for h in WIDTHS) + tuple(Shape(STEPS, b, 256) for b in BATCHES)
SGEMM_SHARE_FROM = 512  # the hidden size from which the share of sgemm is a target


def has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def sweep_point(
    shape: Shape, repeats: int, block_s: float, pause_s: float, with_torch: bool
) -> dict:
    """kioku (and PyTorch) training with dx at ``shape``, interleaved with the sgemm
    reference: medians, the ratio (> 1: kioku faster) and kioku's share of sgemm."""
    state, x = workloads.torch_state(shape), workloads.inputs(shape)
    reference, reference_flops = timing.sgemm_reference()
    fns: dict[str, Callable[[], object]] = {"kioku": workloads.kioku_train(shape, state, x)}
    if with_torch:
        fns["torch"] = workloads.torch_train(shape, state, x)
    stats = timing.interleaved({**fns, "sgemm": reference}, repeats, block_s, pause_s)
    sgemm_gflops = reference_flops / stats.pop("sgemm")["median_s"] / 1e9
    flops = shape.training_flops()  # 3 x forward: exact with the input gradient
    kioku_gflops = flops / stats["kioku"]["median_s"] / 1e9
    torch_stats = stats.get("torch")
    return {
        "shape": shape.name,
        "T": shape.steps,
        "B": shape.batch,
        "H": shape.hidden,
        "training_gflop": flops / 1e9,
        "train": stats,
        "ratio_vs_torch": (
            torch_stats["median_s"] / stats["kioku"]["median_s"] if torch_stats else None
        ),
        "sgemm_gflops": sgemm_gflops,
        "kioku_gflops": kioku_gflops,
        "kioku_share_of_sgemm": kioku_gflops / sgemm_gflops,
        "torch_share_of_sgemm": (
            flops / torch_stats["median_s"] / 1e9 / sgemm_gflops if torch_stats else None
        ),
    }


def run_sweep(
    points: tuple[Shape, ...] = SWEEP,
    repeats: int = 5,
    block_s: float = 0.25,
    pause_s: float = 0.3,
    log: Callable[[str], None] = print,
    quiet_gflops: float | None = None,
    probe: load.LoadProbe | None = None,
    idle_s: float = load.BEFORE_S,
) -> dict:
    """The whole sweep, judged for load as a benchmark run is
    (:func:`kioku.bench.load.verdict`); returns the JSON-able result, its points under
    ``"sweep"`` (and ``"results"`` empty: no per-shape tables)."""
    from .runner import machine_info

    probe = probe or load.LoadProbe()
    with_torch = has_torch()
    started = time.time()
    log(f"machine load before the sweep ({idle_s:.0f} s)")
    before = load.measure_idle(probe, idle_s)
    run_start = probe.sample()
    peak = timing.peak_sgemm()
    rows, by_point = [], {}
    for shape in points:
        log(f"sweep {shape.name}: training with dx")
        start = probe.sample()
        rows.append(sweep_point(shape, repeats, block_s, pause_s, with_torch))
        by_point[shape.name] = load.others_share(start, probe.sample())
    peak_after = timing.peak_sgemm()
    validity = load.verdict(
        before,
        load.others_share(run_start, probe.sample()),
        by_point,
        peak["peak_gflops"],
        peak_after["peak_gflops"],
        quiet_gflops,
        {row["shape"]: row["sgemm_gflops"] for row in rows},
    )
    note = None if with_torch else "PyTorch is not installed: kioku alone, no ratios"
    if note:
        log(f"note: {note}")
    return {
        "machine": machine_info(),
        "load": validity,
        "peak_sgemm": peak,
        "peak_sgemm_after": peak_after,
        "settings": {
            "repeats": repeats,
            "block_s": block_s,
            "pause_s": pause_s,
            "torch_threads": workloads.peer_threads() if with_torch else None,
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "seconds": time.time() - started,
        "results": [],
        "sweep": {
            "task": "training with the input gradient, T = "
            + ", ".join(str(t) for t in sorted({s.steps for s in points}))
            + ", I = H, float32",
            "torch": with_torch,
            "note": note,
            "share_target_from_hidden": SGEMM_SHARE_FROM,
            "sgemm_size": timing.REFERENCE_SIZE,
            "points": rows,
        },
    }


def sweep_lines(result: dict) -> list[str]:
    """The sweep as Markdown: one table per axis, then the share of sgemm at H >= 512."""
    sweep = result.get("sweep")
    if not sweep:
        return []
    rows = sweep["points"]

    def ratio(row: dict) -> str:
        value = row["ratio_vs_torch"]
        return "n/a" if value is None else f"{value:.2f}x"

    def table(title: str, axis: str, chosen: list[dict]) -> list[str]:
        if not chosen:
            return []
        return [
            title,
            "",
            f"| {axis} | " + " | ".join(str(row[axis]) for row in chosen) + " |",
            "|---|" + "---|" * len(chosen),
            "| kioku vs PyTorch | " + " | ".join(ratio(row) for row in chosen) + " |",
            "| kioku ms | "
            + " | ".join(f"{row['train']['kioku']['median_s'] * 1e3:.3g}" for row in chosen)
            + " |",
            "| kioku % of sgemm | "
            + " | ".join(f"{row['kioku_share_of_sgemm']:.0%}" for row in chosen)
            + " |",
            "",
        ]

    by_width = [r for r in rows if r["B"] == 32]
    by_batch = [r for r in rows if r["B"] != 32]
    widths = ", ".join(str(h) for h in sorted({r["H"] for r in by_batch}))
    size = sweep.get("sgemm_size", timing.REFERENCE_SIZE)
    lines = [f"Scaling sweep: {sweep['task']}; medians of {result['settings']['repeats']} "
             f"interleaved rounds, each with NumPy's {size}^3 sgemm (the share's reference).",
             ""]  # fmt: skip
    if sweep.get("note"):
        lines += [f"Note: {sweep['note']}.", ""]
    lines += table("B = 32:", "H", by_width)
    lines += table(f"H = {widths}:", "B", by_batch)
    share_from = sweep["share_target_from_hidden"]
    wide = [r for r in rows if r["H"] >= share_from]
    if wide:
        shares = ", ".join(
            f"{r['shape']} {r['kioku_share_of_sgemm']:.0%} of {r['sgemm_gflops']:.0f} GFLOP/s"
            for r in wide
        )
        lines += [f"kioku's share of the sgemm rate at H >= {share_from} (target 85 %): {shares}.",
                  ""]  # fmt: skip
    return lines
