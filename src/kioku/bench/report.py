"""The benchmark result as Markdown tables (training, inference, machine)."""

from __future__ import annotations

from .sweep import sweep_lines


def _ms(stats: dict) -> str:
    return f"{stats['median_s'] * 1e3:.3g}"


def _mb(entry: dict | None) -> str:
    if not entry or entry.get("peak_bytes") is None:
        return "n/a"
    return f"{entry['peak_bytes'] / 2**20:.1f}"


def _share(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1%}"


def _rate(value: float) -> str:
    return f"{value:.0f}"


def validity_lines(result: dict) -> list[str]:
    """The verdict and the load figures behind it (see :mod:`kioku.bench.load`)."""
    state = result.get("load")
    if state is None:
        return ["**NOT VALID**: this run did not measure how busy the machine was.", ""]
    head = "Valid run" if state["valid"] else "**NOT VALID**"
    quiet = state.get("quiet_sgemm_gflops")
    lines = [
        f"{head}: other processes used {_share(state['others_share_before'])} of the cores "
        f"before the run and {_share(state['others_share_during'])} during it (limit "
        f"{state['limits']['max_others_share']:.0%}); sgemm {state['sgemm_before_gflops']:.0f} "
        f"GFLOP/s before and {state['sgemm_after_gflops']:.0f} after"
        + (f", quiet rate {quiet:.0f}." if quiet else " (no quiet rate given)."),
    ]
    per_shape = (
        ("Other processes' share of the cores per shape", "others_share_by_shape", _share),
        ("sgemm in each shape's own rounds (median, GFLOP/s)", "sgemm_by_shape_gflops", _rate),
    )
    for label, key, show in per_shape:
        values = state.get(key) or {}
        if values:
            lines.append(
                f"{label}: " + ", ".join(f"{n} {show(v)}" for n, v in values.items()) + "."
            )
    for reason in state["reasons"]:
        lines.append(f"- not valid: {reason}")
    return lines + [""]


def overhead_lines(result: dict) -> list[str]:
    """The batch-1 fixed cost of one call, kioku beside its peers."""
    cost = result.get("call_overhead")
    if not cost:
        return []
    parts = [
        f"{label} {cost[name]['median_us']:.1f} µs"
        for name, label in (("kioku", "kioku"), ("torch", "PyTorch"), ("onnxruntime", "ORT"))
        if name in cost
    ]
    return [
        f"Fixed cost of one inference call ({cost['shape']}, eval, no cache kept; median "
        f"of {cost['kioku']['calls']} calls): " + ", ".join(parts) + ".",
        "",
    ]


def tuning_lines(machine: dict) -> list[str]:
    """The CPU's instruction set and the kernels' choices in force during the run."""
    lines = []
    if machine.get("cpu_flags") is not None:
        flags = " ".join(machine["cpu_flags"]) or "none of the flags kioku reads"
        lines.append(f"Instruction set: {flags}.")
    if machine.get("kernel_target"):
        target = ", ".join(f"{k}={v}" for k, v in sorted(machine["kernel_target"].items()))
        lines.append(f"Kernels compiled for another target than the host's: {target}.")
    tuning = machine.get("tuning")
    if tuning:
        where = f" ({tuning['path']})" if tuning.get("path") else ""
        from ..nn.tuning import shown

        values = ", ".join(
            f"{name} {shown(value)}"
            + (
                ""
                if value == tuning["defaults"].get(name)
                else f" (default {shown(tuning['defaults'][name])})"
            )
            for name, value in tuning["values"].items()
        )
        lines.append(f"Kernel choices in force: {tuning['source']}{where}: {values}.")
    return lines + [""] if lines else []


def markdown(result: dict) -> str:
    """Tables of medians: time per call, ratio to the peer, tokens/s, % of peak sgemm;
    the scaling sweep's tables when the run has one."""
    m, peak = result["machine"], result["peak_sgemm"]["peak_gflops"]
    lines = validity_lines(result) + [
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores; peak sgemm {peak:.0f} GFLOP/s "
        f"(best of NumPy/PyTorch 2048^3, measured in the run); numpy {m.get('numpy')}, "
        f"torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, numba {m.get('numba')}, "
        f"BLAS {m.get('blas')}{'; ' + m['mkl'] if m.get('mkl') else ''}, "
        f"kioku backend `{m.get('kioku_backend')}` on {m.get('kioku_threads')} threads, "
        f"PyTorch on {result['settings'].get('torch_threads')}"
        + (
            f", ONNX Runtime on {result['settings']['onnxruntime_intra_op_threads']}"
            if "onnxruntime_intra_op_threads" in result["settings"]
            else ""
        )
        + f". Medians of {result['settings']['repeats']} interleaved repeats; float32; I = H.",
        "",
        *tuning_lines(m),
        *sweep_lines(result),
    ]
    if result["results"]:
        lines += shape_lines(result)
    return "\n".join(lines) + "\n"


def shape_lines(result: dict) -> list[str]:
    """The per-shape tables: training vs PyTorch, inference vs ONNX Runtime, notes."""
    lines = [
        *overhead_lines(result),
        "Training (forward + backward of the summed output, the input gradient on both sides):",
        "",
        "| shape | kioku ms | PyTorch ms | kioku speed-up | kioku tokens/s | kioku % peak "
        "| PyTorch % peak | peak MiB kioku | peak MiB PyTorch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["results"]:
        k, t = row["train"]["kioku"], row["train"]["torch"]
        mem = row.get("train_peak_memory", {})
        lines.append(
            f"| {row['shape']} | {_ms(k)} | {_ms(t)} | {t['median_s'] / k['median_s']:.2f}x "
            f"| {k['tokens_per_s']:,.0f} | {k['pct_peak']:.0f}% | {t['pct_peak']:.0f}% "
            f"| {_mb(mem.get('kioku'))} | {_mb(mem.get('torch'))} |"
        )
    lines += [
        "",
        "Inference (forward only):",
        "",
        "| shape | kioku ms | ONNX Runtime ms | PyTorch ms | kioku vs ORT | kioku tokens/s "
        "| kioku % peak | ORT % peak | max abs diff vs ORT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["results"]:
        k, o, t = (row["infer"][n] for n in ("kioku", "onnxruntime", "torch"))
        lines.append(
            f"| {row['shape']} | {_ms(k)} | {_ms(o)} | {_ms(t)} "
            f"| {o['median_s'] / k['median_s']:.2f}x | {k['tokens_per_s']:,.0f} "
            f"| {k['pct_peak']:.0f}% | {o['pct_peak']:.0f}% "
            f"| {row['max_abs_diff']['onnxruntime']:.1e} |"
        )
    kept = {r["shape"]: r.get("kioku_infer_retained_bytes") for r in result["results"]}
    if any(kept.values()):
        lines += [
            "",
            "kioku's inference kept caches for a backward (no `kioku.nn.no_grad()` in this "
            "build?): " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in kept.items() if v) + ".",
        ]
    first = result.get("first_call") or {}
    cold, cached = first.get("cold", {}), first.get("cached", {})
    if "first_call_s" in cold and "first_call_s" in cached:
        lines += [
            "",
            f"First call of the compiled kernels (float32 forward + backward in a fresh "
            f"interpreter): {cold['first_call_s']:.1f} s with an empty JIT cache (compiling), "
            f"{cached['first_call_s']:.2f} s with the disk cache; the second call "
            f"{cached['second_call_s'] * 1e3:.2f} ms.",
        ]
    lines += [
        "",
        "Speed-up > 1 means kioku is faster. Peak memory: extra bytes of one "
        "training step over the resident set before it, plus, for kioku, the caches its "
        "`nn.LSTM` keeps from the previous step (see `kioku.bench.memory`).",
    ]
    return lines
