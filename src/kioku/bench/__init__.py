"""Benchmarks of kioku's LSTM against PyTorch (training) and ONNX Runtime (inference).

:func:`run_benchmark` runs every shape interleaved and returns a JSON-able dict;
:func:`markdown` renders it. ``kioku bench`` and ``benchmarks/bench_lstm.py`` call them.
PyTorch, ONNX Runtime and onnx are needed only here, imported when a run starts.
"""

from .report import markdown
from .runner import run_benchmark, write_json
from .workloads import QUICK_SHAPES, SHAPES, Shape

__all__ = ["QUICK_SHAPES", "SHAPES", "Shape", "markdown", "run_benchmark", "write_json"]
