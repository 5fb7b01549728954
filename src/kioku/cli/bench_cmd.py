"""``kioku bench``: time kioku's LSTM against PyTorch and ONNX Runtime on this machine."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "Benchmark kioku against PyTorch and ONNX Runtime on this machine."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two small shapes, 3 short repeats, no memory runs (~1 minute)",
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
        "--no-memory", action="store_true", help="skip the training peak-memory subprocesses"
    )


def run(args: argparse.Namespace) -> int:
    missing = [m for m in ("torch", "onnx", "onnxruntime") if not _importable(m)]
    if missing:
        print(
            f"kioku bench: needs {', '.join(missing)} (pip install 'kioku-lstm[torch,onnx]')",
            file=sys.stderr,
        )
        return 1
    from ..bench import QUICK_SHAPES, SHAPES, markdown, run_benchmark, write_json

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if repeats < 1:
        raise ValueError(f"--repeats: expected a positive integer, found {repeats}")
    result = run_benchmark(
        QUICK_SHAPES if args.quick else SHAPES,
        repeats=repeats,
        block_s=0.05 if args.quick else 0.25,
        pause_s=0.1 if args.quick else 0.3,
        measure_memory=not (args.quick or args.no_memory),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    os.makedirs(args.out, exist_ok=True)
    write_json(result, os.path.join(args.out, "bench.json"))
    table = markdown(result)
    tmp = os.path.join(args.out, f"bench.md.tmp{os.getpid()}")
    with open(tmp, "w") as handle:
        handle.write(table)
    os.replace(tmp, os.path.join(args.out, "bench.md"))
    print(table)
    return 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
