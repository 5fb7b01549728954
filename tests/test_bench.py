"""The benchmark harness on tiny shapes: same weights in every library, timing, report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kioku.bench import markdown, memory, runner, timing, workloads
from kioku.bench.workloads import Shape

TINY = (Shape(4, 3, 5), Shape(3, 2, 4, layers=2, bidirectional=True))


@pytest.mark.parametrize("shape", TINY, ids=lambda s: s.name)
def test_libraries_compute_the_same_network(shape):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    state, x = workloads.torch_state(shape), workloads.inputs(shape)
    y = workloads.kioku_infer(shape, state, x)()
    assert y.shape == (shape.steps, shape.batch, shape.hidden * shape.directions)
    np.testing.assert_allclose(workloads.ort_infer(shape, state, x)(), y, rtol=0, atol=1e-5)
    np.testing.assert_allclose(workloads.torch_infer(shape, state, x)(), y, rtol=0, atol=1e-5)


def test_flop_counts():
    one = Shape(10, 2, 8)
    assert one.forward_flops() == 2 * 10 * 2 * 32 * 16
    assert one.training_flops() == 3 * one.forward_flops()
    two = Shape(10, 2, 8, layers=2, bidirectional=True)
    assert two.forward_flops() == 2 * (2 * 10 * 2 * 32 * 16) + 2 * (2 * 10 * 2 * 32 * 24)


def test_interleaved_timing_alternates_and_reports_medians():
    calls = []
    stats = timing.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        repeats=3,
        block_s=0.001,
        pause_s=0.0,
    )
    assert set(stats) == {"a", "b"}
    for s in stats.values():
        assert s["repeats"] == 3 and s["min_s"] <= s["median_s"] <= s["max_s"]
    first_b = calls.index("b")
    assert "a" in calls[first_b:]  # a ran again after b: interleaved, not one block each


def test_kioku_training_memory_is_measured_in_process():
    result = memory.measure_here("kioku", Shape(6, 3, 8))
    assert result["peak_bytes"] > 0
    assert result["retained_bytes"] > 0  # the model holds its last caches


def test_quick_run_writes_json_and_markdown(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setattr(timing, "peak_sgemm", lambda: {"numpy_gflops": 1.0, "peak_gflops": 1.0})
    result = runner.run_benchmark(
        (TINY[0],),
        repeats=1,
        block_s=0.001,
        pause_s=0.0,
        measure_memory=False,
        log=lambda line: None,
    )
    path = tmp_path / "bench.json"
    runner.write_json(result, str(path))
    loaded = json.loads(path.read_text())
    row = loaded["results"][0]
    assert row["max_abs_diff"]["onnxruntime"] < 1e-5
    assert row["train"]["kioku"]["tokens_per_s"] > 0
    table = markdown(loaded)
    assert TINY[0].name in table and "| kioku ms |" in table


def test_bench_command_is_registered():
    from kioku.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--out", "somewhere", "--no-memory"])
    assert args.quick and args.no_memory and args.out == "somewhere"
    assert args.command == "bench"
