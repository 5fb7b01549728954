"""What the tests of the two oneMKL packed-GEMM paths share (``tests/test_mkl_units.py``:
inference split by hidden units; ``tests/test_mkl_rows.py``: training split by rows): the
skip where the ``mkl`` extra is not installed, and a thread budget that splits every
batch."""

from __future__ import annotations

import pytest

from kioku.kernels import _mkl_units, _threads, numba_lstm

needs_mkl_packed = pytest.mark.skipif(
    not _mkl_units.AVAILABLE,
    reason="oneMKL's packed GEMM not installed here (pip install -e '.[mkl]')",
)


def split_every_batch(monkeypatch: pytest.MonkeyPatch, parts: int) -> None:
    """Pretend the process may run on ``parts`` cores (no ``KIOKU_NUM_THREADS``) and split
    every batch by rows from one row a thread, each step not fused, the MKL paths open to
    calls of any length (the callers set the thresholds of the path they test)."""
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(parts)))
    monkeypatch.delenv("KIOKU_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    monkeypatch.setattr(numba_lstm, "FUSED_MAX_BYTES", 0)
    monkeypatch.setattr(_mkl_units, "MIN_STEPS", 1)  # short calls, to test the paths
