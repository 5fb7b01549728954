"""The benchmark harness on tiny shapes: same weights in every library, timing, report."""

from __future__ import annotations

import json

import pytest
from tolerance import assert_close, recurrent_depth

from kioku.bench import load, markdown, memory, overhead, report, runner, sweep, timing, workloads
from kioku.bench.load import CpuTimes, LoadProbe, Sample
from kioku.bench.workloads import Shape
from kioku.cli import bench_cmd

TINY = (Shape(4, 3, 5), Shape(3, 2, 4, layers=2, bidirectional=True))


@pytest.mark.torch
@pytest.mark.parametrize("shape", TINY, ids=lambda s: s.name)
def test_libraries_compute_the_same_network(shape):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    state, x = workloads.torch_state(shape), workloads.inputs(shape)
    y = workloads.kioku_infer(shape, state, x)()
    assert y.shape == (shape.steps, shape.batch, shape.hidden * shape.directions)
    H = shape.hidden
    depth = recurrent_depth(shape.steps, H * shape.directions, H, shape.layers, shape.batch)
    assert_close("onnxruntime", workloads.ort_infer(shape, state, x)(), y, depth)
    assert_close("torch", workloads.torch_infer(shape, state, x)(), y, depth)


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


def _tiny_run(monkeypatch, others: float, overhead_calls: int) -> dict:
    """A whole run of one tiny shape, one repeat, with other processes pretended to use
    ``others`` of the cores, a fake sgemm peak and a small in-round sgemm."""
    monkeypatch.setattr(timing, "peak_sgemm", lambda: {"numpy_gflops": 1.0, "peak_gflops": 1.0})
    monkeypatch.setattr(timing, "REFERENCE_SIZE", 64)
    return runner.run_benchmark(
        (TINY[0],), repeats=1, block_s=0.001, pause_s=0.0, measure_memory=False,
        log=lambda line: None, probe=fake_probe(others), idle_s=0.0,
        overhead_calls=overhead_calls,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.torch
def test_quick_run_writes_json_and_markdown(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    result = _tiny_run(monkeypatch, others=0.05, overhead_calls=20)
    assert result["load"]["valid"] and result["load"]["others_share_during"] == pytest.approx(0.05)
    # the reference sgemm timed in each shape's own rounds, kept apart from the libraries
    rates = result["results"][0]["sgemm_gflops"]
    assert set(rates) == {"train", "infer"} and min(rates.values()) > 0
    assert "sgemm" not in result["results"][0]["train"]
    by_shape = result["load"]["sgemm_by_shape_gflops"]
    assert by_shape == {TINY[0].name: min(rates.values())}
    assert result["call_overhead"]["kioku"]["median_us"] > 0
    # inference inside kioku.nn.no_grad() keeps no cache
    assert result["results"][0]["kioku_infer_retained_bytes"] == 0
    assert "torch" in result["call_overhead"] and "onnxruntime" in result["call_overhead"]
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


class FakeMachine:
    """A /proc/stat reader whose cores are busy ``share`` of the time in every interval
    (plus what this process itself used), advancing one second per read."""

    def __init__(self, share: float, cores: int = 2, own_per_read: float = 0.0) -> None:
        self.share, self.cores, self.own_per_read = share, cores, own_per_read
        self.busy = self.total = self.own = 0.0

    def read(self) -> CpuTimes:
        self.total += self.cores
        self.own += self.own_per_read
        self.busy += self.share * self.cores + self.own_per_read
        return CpuTimes(self.busy, self.total, self.cores)


def fake_probe(share: float, own_per_read: float = 0.0) -> LoadProbe:
    machine = FakeMachine(share, own_per_read=own_per_read)
    return LoadProbe(reader=machine.read, own=lambda: machine.own, clock=lambda: machine.total)


def test_proc_stat_is_read_in_seconds(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  100 10 50 800 20 5 5 10 7 0\n"
        "cpu0 50 5 25 400 10 3 2 5 7 0\ncpu1 50 5 25 400 10 2 3 5 0 0\n"
        "intr 12345\nctxt 678\n"
    )
    monkeypatch.setattr(load.os, "sysconf", lambda name: 100)
    times = load.read_proc_stat(str(stat), cpus={0, 1})
    assert times == CpuTimes(busy=1.8, total=10.0, cores=2)  # guest (7) is inside user
    # only the cores this process may use count: cpu1 alone
    assert load.read_proc_stat(str(stat), cpus={1}) == CpuTimes(busy=0.9, total=5.0, cores=1)
    assert load.read_proc_stat(str(tmp_path / "missing")) is None


def test_own_cpu_time_is_not_counted_as_other_processes():
    probe = fake_probe(0.10, own_per_read=1.5)  # this process keeps 1.5 of 2 cores busy
    start, end = probe.sample(), probe.sample()
    assert load.others_share(start, end) == pytest.approx(0.10)
    assert load.others_share(None, end) is None
    still = Sample(start.machine, start.own, start.wall)
    assert load.others_share(start, still) is None  # no time passed


def test_real_probe_reads_this_machine():
    import os
    import time

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat here")
    probe = LoadProbe()
    start = probe.sample()
    assert start.machine.cores == len(os.sched_getaffinity(0))
    time.sleep(0.1)  # several clock ticks
    end = probe.sample()
    assert end.machine.total > start.machine.total and end.wall > start.wall
    share = load.others_share(start, end)
    assert share is not None and 0.0 <= share <= 1.0


def _verdict(
    before=0.02, during=0.03, shapes=None, sgemm=(250.0, 245.0), quiet=270.0, by_shape=None
):
    shapes = shapes or {"T=35": 0.05}
    return load.verdict(before, during, shapes, *sgemm, quiet, by_shape or {"T=35": 240.0})


def test_quiet_machine_is_valid():
    state = _verdict()
    assert state["valid"] and state["reasons"] == []
    assert state["sgemm_share_of_quiet"] == pytest.approx(245 / 270)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"before": 0.30}, "30% of the cores before the run"),
        ({"during": 0.26}, "26% of the cores during the run"),
        ({"shapes": {"T=35": 0.05, "T=50": 0.40}}, "40% of the cores during T=50"),
        ({"before": None}, "before the run could not be measured"),
        ({"sgemm": (250.0, 180.0)}, "sgemm after the run reached 180 GFLOP/s"),
        ({"sgemm": (250.0, 180.0), "quiet": None}, "the other end of the run"),
        ({"by_shape": {"T=35": 240.0, "T=50": 150.0}}, "sgemm during T=50 reached 150 GFLOP/s"),
    ],
)
def test_busy_machine_is_not_valid(kwargs, reason):
    state = _verdict(**kwargs)
    assert not state["valid"]
    assert any(reason in line for line in state["reasons"]), state["reasons"]


def test_exactly_a_quarter_is_still_valid():
    assert _verdict(before=0.25, during=0.25)["valid"]


def test_results_folder_is_recognised(tmp_path):
    assert load.results_folder(str(tmp_path / "benchmarks" / "results" / "idle"))
    assert load.results_folder(str(tmp_path / "benchmarks" / "results"))
    assert not load.results_folder(str(tmp_path / "bench-results"))
    assert not load.results_folder(str(tmp_path / "results"))


def _fake_result(valid: bool) -> dict:
    shape = Shape(4, 3, 5)
    stats = {"median_s": 0.001, "min_s": 0.001, "max_s": 0.001, "tokens_per_s": 12000.0,
             "pct_peak": 10.0, "calls": 1, "repeats": 1}  # fmt: skip
    state = _verdict(before=0.02 if valid else 0.6)
    return {
        "machine": {"cpu": "test", "cores": 2},
        "load": state,
        "peak_sgemm": {"peak_gflops": 250.0},
        "settings": {"repeats": 1},
        "call_overhead": {"shape": "T=1 B=1 I=H=8", "kioku": {"median_us": 9.5, "calls": 5}},
        "results": [
            {
                "shape": shape.name,
                "train": {"kioku": stats, "torch": stats},
                "infer": {"kioku": stats, "onnxruntime": stats, "torch": stats},
                "max_abs_diff": {"onnxruntime": 1e-7, "torch": 1e-7},
            }
        ],
    }


def test_not_valid_run_writes_nothing_under_benchmarks_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "benchmarks" / "results" / "idle"
    assert bench_cmd.save(_fake_result(valid=False), str(target)) == 3
    assert not (tmp_path / "benchmarks" / "results").exists()
    kept = tmp_path / bench_cmd.NOT_VALID_FOLDER
    saved = json.loads((kept / "bench.json").read_text())
    assert saved["load"]["valid"] is False
    assert (kept / "bench.md").read_text().startswith("**NOT VALID**")


def test_valid_run_is_written_where_asked(tmp_path):
    target = tmp_path / "benchmarks" / "results" / "idle"
    assert bench_cmd.save(_fake_result(valid=True), str(target)) == 0
    table = (target / "bench.md").read_text()
    assert table.startswith("Valid run: other processes used 2.0% of the cores before")
    assert "sgemm in each shape's own rounds (median, GFLOP/s): T=35 240." in table
    assert "kioku 9.5 µs" in table
    assert json.loads((target / "bench.json").read_text())["load"]["valid"] is True


def test_not_valid_run_elsewhere_is_written_and_marked(tmp_path):
    assert bench_cmd.save(_fake_result(valid=False), str(tmp_path / "out")) == 3
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "**NOT VALID**" in table and "60% of the cores before the run" in table


@pytest.mark.torch
def test_busy_run_is_marked_not_valid_end_to_end(monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    result = _tiny_run(monkeypatch, others=0.5, overhead_calls=5)
    assert not result["load"]["valid"]
    assert result["load"]["others_share_by_shape"][TINY[0].name] == pytest.approx(0.5)


def test_call_overhead_reports_per_call_times():
    cost = overhead.call_overhead(calls=20, peers=False)
    kioku = cost["kioku"]
    assert kioku["calls"] == 20 and 0 < kioku["p10_us"] <= kioku["median_us"] <= kioku["p90_us"]


@pytest.mark.torch
def test_quiet_rate_must_be_positive():
    from kioku.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--quiet-gflops", "-1"])
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="--quiet-gflops: expected a positive rate"):
        bench_cmd.run(args)


@pytest.mark.torch
def test_bench_command_passes_the_quiet_rate_and_saves(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from kioku import bench
    from kioku.cli import build_parser

    seen = {}

    def fake_run(shapes, **kwargs):
        seen.update(kwargs, shapes=shapes)
        return _fake_result(valid=False)

    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    out = tmp_path / "benchmarks" / "results" / "x"
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(
        ["bench", "--quick", "--out", str(out), "--quiet-gflops", "270"]
    )
    assert bench_cmd.run(args) == 3
    assert seen["quiet_gflops"] == 270.0 and seen["shapes"] == bench.QUICK_SHAPES
    assert not out.exists() and (tmp_path / bench_cmd.NOT_VALID_FOLDER / "bench.json").exists()


# --- the CPU, its instruction set and the kernels' choices; the scaling sweep ---------------

TINY_SWEEP = (Shape(3, 32, 8), Shape(3, 32, 16), Shape(3, 2, 8))


def test_machine_records_the_cpu_its_flags_and_the_choices_in_force():
    from kioku.kernels import _tuning

    info = runner.machine_info()
    assert (info["cpu"], info["cpu_flags"]) == _tuning.cpu()
    assert set(info["cpu_flags"]) <= set(_tuning.FLAGS)
    tuning = info["tuning"]
    assert tuning["source"] == "defaults (KIOKU_TUNING=off)"  # tests/conftest.py
    assert tuning["values"] == tuning["defaults"] == _tuning.defaults()
    lines = report.tuning_lines(info)
    assert lines[0].startswith("Instruction set: ")
    # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES (.ci/run's AVX2 pass) add a line between them
    assert bool(info.get("kernel_target")) == lines[1].startswith("Kernels compiled for ")
    assert lines[-2].startswith(
        "Kernel choices in force: defaults (KIOKU_TUNING=off): "
        "MKL_MIN_MNK no limit, TALL_MIN_ROWS no limit, PIPELINE_MIN_FLOPS 4e+06,"
    )


def test_tuned_choices_are_named_with_their_file_and_defaults():
    machine = {
        "cpu_flags": ["avx2", "fma"],
        "tuning": {
            "source": "tuned",
            "path": "/cache/kioku/tuning-0123.json",
            "values": {"MIN_ROWS": 8, "MIN_FLOPS": 4e6},
            "defaults": {"MIN_ROWS": 4, "MIN_FLOPS": 4e6},
        },
    }
    assert report.tuning_lines(machine) == [
        "Instruction set: avx2 fma.",
        "Kernel choices in force: tuned (/cache/kioku/tuning-0123.json): MIN_ROWS 8 "
        "(default 4), MIN_FLOPS 4e+06.",
        "",
    ]


def test_kernels_built_for_another_target_say_so():
    machine = {"cpu_flags": ["avx2", "avx512f"], "kernel_target": {"NUMBA_CPU_NAME": "haswell"}}
    assert report.tuning_lines(machine) == [
        "Instruction set: avx2 avx512f.",
        "Kernels compiled for another target than the host's: NUMBA_CPU_NAME=haswell.",
        "",
    ]


def test_sweep_points_are_the_issue_s():
    assert {s.steps for s in sweep.SWEEP} == {50}
    assert [s.hidden for s in sweep.SWEEP if s.batch == 32] == [32, 64, 128, 256, 512, 1024]
    assert [s.batch for s in sweep.SWEEP if s.batch != 32] == [1, 4, 16, 64, 256]
    assert {s.hidden for s in sweep.SWEEP if s.batch != 32} == {256}


@pytest.mark.torch
@pytest.mark.parametrize("shape", [Shape(4, 3, 5), Shape(4, 2, 3, layers=2, bidirectional=True)])
def test_training_steps_take_the_input_gradient_like_torch(shape):
    # the six shapes and the sweep time both libraries on the same work: parameter
    # gradients and dx (PyTorch's backward computes dx whether or not it is asked for)
    torch = pytest.importorskip("torch")
    state, x = workloads.torch_state(shape), workloads.inputs(shape)
    dx = workloads.kioku_train(shape, state, x)()
    assert dx.shape == x.shape
    torch_dx = workloads.torch_train(shape, state, x.copy())()
    assert isinstance(torch_dx, torch.Tensor)
    depth = recurrent_depth(
        shape.steps, shape.hidden * shape.directions, shape.hidden, shape.layers, shape.batch
    )
    assert_close("dx", dx, torch_dx.numpy(), depth)


def _tiny_sweep(monkeypatch) -> dict:
    monkeypatch.setattr(timing, "peak_sgemm", lambda: {"numpy_gflops": 1.0, "peak_gflops": 1.0})
    monkeypatch.setattr(timing, "REFERENCE_SIZE", 64)
    return sweep.run_sweep(
        TINY_SWEEP, repeats=1, block_s=0.001, pause_s=0.0, log=lambda line: None,
        probe=fake_probe(0.05), idle_s=0.0,
    )  # fmt: skip


def test_sweep_on_tiny_sizes_reports_every_field(monkeypatch, tmp_path):
    with_torch = sweep.has_torch()
    result = _tiny_sweep(monkeypatch)
    assert result["results"] == [] and result["load"]["valid"]
    assert set(result["load"]["others_share_by_shape"]) == {s.name for s in TINY_SWEEP}
    points = result["sweep"]["points"]
    assert [(p["T"], p["B"], p["H"]) for p in points] == [(3, 32, 8), (3, 32, 16), (3, 2, 8)]
    for point, shape in zip(points, TINY_SWEEP):
        assert point["training_gflop"] == pytest.approx(shape.training_flops() / 1e9)
        kioku = point["train"]["kioku"]
        assert kioku["repeats"] == 1 and kioku["median_s"] > 0
        assert "sgemm" not in point["train"] and point["sgemm_gflops"] > 0
        expected = point["training_gflop"] / kioku["median_s"] / point["sgemm_gflops"]
        assert point["kioku_share_of_sgemm"] == pytest.approx(expected)
        if with_torch:
            torch = point["train"]["torch"]["median_s"]
            assert point["ratio_vs_torch"] == pytest.approx(torch / kioku["median_s"])
    assert result["sweep"]["torch"] is with_torch
    assert result["machine"]["tuning"]["source"] == "defaults (KIOKU_TUNING=off)"
    runner.write_json(result, str(tmp_path / "bench.json"))
    loaded = json.loads((tmp_path / "bench.json").read_text())
    table = markdown(loaded)
    assert "Scaling sweep: training with the input gradient, T = 3, I = H" in table
    assert "NumPy's 64^3 sgemm" in table and "ONNX Runtime on" not in table
    assert "| H | 8 | 16 |" in table and "| B | 2 |" in table
    assert "| kioku % of sgemm |" in table and "Kernel choices in force:" in table
    assert "| kioku ms | PyTorch ms |" not in table  # no per-shape tables in a sweep
    assert "share of the sgemm rate at H >= 512" not in table  # no such width here
    loaded["sweep"]["share_target_from_hidden"] = 16
    assert "share of the sgemm rate at H >= 16 (target 85 %): T=3 B=32 H=16 " in markdown(loaded)


def test_sweep_without_torch_says_so(monkeypatch):
    monkeypatch.setattr(sweep, "has_torch", lambda: False)
    result = _tiny_sweep(monkeypatch)
    assert result["sweep"]["note"] == "PyTorch is not installed: kioku alone, no ratios"
    assert all(p["ratio_vs_torch"] is None and "torch" not in p["train"]
               for p in result["sweep"]["points"])  # fmt: skip
    table = markdown(result)
    assert "Note: PyTorch is not installed" in table and "| kioku vs PyTorch | n/a |" in table


def test_bench_sweep_command_runs_the_sweep_and_saves(tmp_path, monkeypatch, capsys):
    from kioku.cli import build_parser

    seen = {}

    def fake_sweep(points, **kwargs):
        seen.update(kwargs, points=points)
        return _tiny_sweep_result()

    monkeypatch.setattr(sweep, "run_sweep", fake_sweep)
    args = build_parser().parse_args(["bench", "--sweep", "--quick", "--out", str(tmp_path)])
    assert args.sweep and bench_cmd.run(args) == 0
    assert seen["points"] == sweep.SWEEP and seen["repeats"] == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("CPU: ") and "Kernel choices in force:" in captured.err
    assert "Scaling sweep" in (tmp_path / "bench.md").read_text()
    assert json.loads((tmp_path / "bench.json").read_text())["sweep"]["points"][0]["H"] == 512


def _tiny_sweep_result() -> dict:
    stats = {"median_s": 0.01, "min_s": 0.01, "max_s": 0.01, "calls": 1, "repeats": 1}
    point = {
        "shape": "T=50 B=32 H=512", "T": 50, "B": 32, "H": 512, "training_gflop": 1.0,
        "train": {"kioku": stats, "torch": stats}, "ratio_vs_torch": 1.0,
        "sgemm_gflops": 200.0, "kioku_gflops": 100.0, "kioku_share_of_sgemm": 0.5,
        "torch_share_of_sgemm": 0.5,
    }  # fmt: skip
    result = _fake_result(valid=True)
    result["results"] = []
    result["sweep"] = {"task": "training with dx", "torch": True, "note": None,
                       "share_target_from_hidden": 512, "points": [point]}  # fmt: skip
    return result
