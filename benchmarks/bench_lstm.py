"""Benchmark kioku's LSTM against PyTorch and ONNX Runtime: the same run as ``kioku bench``.

    python benchmarks/bench_lstm.py [--quick] [--out DIR] [--repeats N] [--no-memory]

Writes ``DIR/bench.json`` and ``DIR/bench.md`` (default ``bench-results``). The logic
lives in :mod:`kioku.bench` so that an installed package can run it too.
"""

from __future__ import annotations

import argparse
import sys

from kioku.cli import bench_cmd

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_cmd.add_arguments(parser)
    sys.exit(bench_cmd.run(parser.parse_args()))
