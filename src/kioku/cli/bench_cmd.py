"""``kioku bench``: time kioku's LSTM against PyTorch and ONNX Runtime on this machine.

Every run records how busy the cores were (:mod:`kioku.bench.load`). A run that other
processes disturbed is marked NOT VALID in bench.json and bench.md, exits with status
3, and writes nothing under a ``benchmarks/results`` folder (its files go to
``bench-results/not-valid/`` instead), so only valid runs can be published from there."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "Benchmark kioku against PyTorch and ONNX Runtime on this machine."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two small shapes, 3 short repeats, no memory runs, ~1 minute (default: off)",
    )
    parser.add_argument(
        "--out",
        default="bench-results",
        help="folder for bench.json and bench.md (default: bench-results)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved repeats per library (default 5; 3 with --quick)",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the training peak-memory subprocesses (default: run them)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="instead of the shapes, the scaling sweep: training with the input gradient, "
        "T = 50, B = 32 with H from 32 to 1024 and H = 256 with B from 1 to 256, kioku vs "
        "PyTorch (if installed) and kioku's share of the sgemm rate (default: off)",
    )
    parser.add_argument(
        "--quiet-gflops",
        type=float,
        default=None,
        help="this machine's sgemm rate when idle (GFLOP/s): a run whose sgemm falls "
        "under 75%% of it is not valid (default: none, validity not judged)",
    )


def run(args: argparse.Namespace) -> int:
    needed = () if args.sweep else ("torch", "onnx", "onnxruntime")  # the sweep: torch if any
    missing = [m for m in needed if not _importable(m)]
    if missing:
        print(
            f"kioku bench: needs {', '.join(missing)} (pip install 'kioku-lstm[torch,onnx]')",
            file=sys.stderr,
        )
        return 1
    from ..bench import QUICK_SHAPES, SHAPES, run_benchmark

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, found {repeats}")
    if args.quiet_gflops is not None and not args.quiet_gflops > 0:
        raise ValueError(
            f"--quiet-gflops: expected a positive rate in GFLOP/s, found {args.quiet_gflops}"
        )
    for line in machine_lines():
        _log(line)
    timing = {
        "repeats": repeats,
        "block_s": 0.05 if args.quick else 0.25,
        "pause_s": 0.1 if args.quick else 0.3,
        "log": _log,
        "quiet_gflops": args.quiet_gflops,
    }
    if args.sweep:
        from ..bench.sweep import SWEEP, run_sweep

        result = run_sweep(SWEEP, **timing)
    else:
        memory = not (args.quick or args.no_memory)
        result = run_benchmark(
            QUICK_SHAPES if args.quick else SHAPES, measure_memory=memory, **timing
        )
    return save(result, args.out)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def machine_lines() -> list[str]:
    """The CPU, its instruction set and the kernels' choices in force, for the log."""
    from ..bench.report import tuning_lines
    from ..nn import tuning

    identity = tuning.machine()
    lines = tuning_lines(
        {
            "cpu_flags": identity["flags"],
            "kernel_target": identity.get("target"),
            "tuning": tuning.in_force(),
        }
    )
    return [f"CPU: {identity['cpu']}", *[line for line in lines if line]]


NOT_VALID_FOLDER = os.path.join("bench-results", "not-valid")


def save(result: dict, out: str) -> int:
    """Write bench.json and bench.md into ``out`` (or, for a run that is not valid and
    an ``out`` under ``benchmarks/results``, into :data:`NOT_VALID_FOLDER`); print the
    tables. Returns 0 for a valid run, 3 otherwise."""
    from ..bench import markdown, write_json
    from ..bench.load import results_folder
    from ..data.atomic import write_text_atomic

    valid = bool(result.get("load", {}).get("valid"))
    if not valid and results_folder(out):
        print(
            f"kioku bench: NOT VALID, nothing written to {out}; files in {NOT_VALID_FOLDER}/",
            file=sys.stderr,
        )
        out = NOT_VALID_FOLDER
    os.makedirs(out, exist_ok=True)
    write_json(result, os.path.join(out, "bench.json"))
    table = markdown(result)
    write_text_atomic(os.path.join(out, "bench.md"), table)
    print(table)
    if not valid:
        print("kioku bench: NOT VALID (see the first lines above)", file=sys.stderr)
    return 0 if valid else 3


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
