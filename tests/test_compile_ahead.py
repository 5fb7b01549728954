"""The first tuning's compiling on two cores (kernels/_compile_ahead.py): when a child
process runs, what it is given, that it has ended before anything is measured, and that
its absence or failure changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kioku.kernels import _compile_ahead, _compile_notice, _threads, _tuning, _tuning_probes


@pytest.fixture
def cold(monkeypatch):
    """Every reading of the seconds compiled a second more: each pass compiles."""
    seconds = iter(range(10**6))
    monkeypatch.setattr(_compile_notice, "compiled_seconds", lambda: float(next(seconds)))


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(_threads, "usable_cores", lambda: 2)
    for name in (_compile_ahead.VARIABLE, *_compile_ahead._MPI_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def test_wanted_with_two_cores_and_not_otherwise(two_cores, monkeypatch):
    assert _compile_ahead.wanted()
    monkeypatch.setenv(_compile_ahead.VARIABLE, "off")
    assert not _compile_ahead.wanted()
    monkeypatch.delenv(_compile_ahead.VARIABLE)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # an MPI rank does not fork
    assert not _compile_ahead.wanted()
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # a frozen application
    assert not _compile_ahead.wanted()
    monkeypatch.delattr(sys, "frozen")
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "")
    assert not _compile_ahead.wanted()
    monkeypatch.setattr(sys, "executable", python)
    assert _compile_ahead.wanted()
    monkeypatch.setattr(_threads, "usable_cores", lambda: 1)
    assert not _compile_ahead.wanted()


def test_the_child_finds_kioku_and_says_nothing(two_cores, monkeypatch, tmp_path):
    out = tmp_path / "child.json"
    monkeypatch.setattr(_compile_ahead, "_CHILD", (
        "import json, os, kioku; json.dump({'kioku': kioku.__file__, "
        f"'notice': os.environ.get('KIOKU_COMPILE_NOTICE')}}, open({str(out)!r}, 'w'))"
    ))  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    child = _compile_ahead.start()
    assert child is not None
    _compile_ahead.finish(child)
    assert child.returncode == 0
    seen = json.loads(out.read_text())
    assert seen["notice"] == "off"
    import kioku

    assert seen["kioku"] == kioku.__file__


def test_a_child_past_its_time_is_stopped():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    began = time.perf_counter()
    _compile_ahead.finish(child, timeout_s=0.2)
    assert child.returncode is not None and time.perf_counter() - began < 30
    _compile_ahead.finish(None)  # no child: nothing to wait for


def test_compile_ahead_runs_here_while_the_child_runs(two_cores, cold, monkeypatch, tmp_path):
    marker = tmp_path / "child-done"
    monkeypatch.setattr(_compile_ahead, "_CHILD", (
        f"import time, pathlib; time.sleep(0.3); pathlib.Path({str(marker)!r}).touch()"
    ))  # fmt: skip
    ran = []
    _compile_ahead.compile_ahead(lambda: ran.append("first"), lambda: ran.append(marker.exists()))
    assert ran == ["first", False]  # this process's half ran while the child still did
    assert marker.exists()  # and the child had ended on return


def test_an_interrupted_run_stops_the_child_at_once(two_cores, monkeypatch):
    monkeypatch.setattr(_compile_ahead, "_CHILD", "import time; time.sleep(60)")
    started = []
    real_start = _compile_ahead.start
    monkeypatch.setattr(_compile_ahead, "start", lambda: started.append(real_start()) or started[0])

    def interrupted() -> None:
        raise KeyboardInterrupt

    began = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        _compile_ahead.compile_ahead(interrupted, lambda: None)
    assert started[0].returncode is not None and time.perf_counter() - began < 30


def test_without_a_child_nothing_runs_ahead(monkeypatch):
    monkeypatch.setenv(_compile_ahead.VARIABLE, "off")
    ran = []
    _compile_ahead.compile_ahead(lambda: ran.append(1), lambda: ran.append(2))
    assert ran == []


def test_a_warm_cache_stops_the_child_after_the_first_probe(two_cores, monkeypatch):
    monkeypatch.setattr(_compile_ahead, "_CHILD", "import time; time.sleep(60)")
    monkeypatch.setattr(_compile_notice, "compiled_seconds", lambda: 3.0)  # nothing compiles
    children = []
    real_start = _compile_ahead.start
    monkeypatch.setattr(
        _compile_ahead, "start", lambda: children.append(real_start()) or children[0]
    )
    ran = []
    began = time.perf_counter()
    _compile_ahead.compile_ahead(lambda: ran.append("first"), lambda: ran.append("rest"))
    assert ran == ["first"] and children[0].returncode is not None
    assert time.perf_counter() - began < 30


def test_a_child_that_cannot_start_changes_nothing(two_cores, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    ran = []
    _compile_ahead.compile_ahead(lambda: ran.append(1), lambda: ran.append(2))
    assert ran == []


def test_measure_runs_the_probes_in_either_order(monkeypatch):
    order = []

    def probe(choice, clock, scale):
        order.append(choice.name)
        return [], "fake"

    for choice in _tuning.CHOICES.values():
        monkeypatch.setattr(_tuning_probes, choice.probe, probe)
    monkeypatch.setattr(_tuning, "apply", lambda *args, **kwargs: None)
    names = list(_tuning.CHOICES)
    _tuning.measure(reverse=True)
    assert order == names[::-1]
    order.clear()
    _tuning.measure()
    assert order == names


def test_measure_ahead_runs_the_probes_once_first(monkeypatch, cold):
    clocks = []

    def probe(choice, clock, scale):
        clocks.append((clock.block_s, clock.rounds))
        return [], "fake"

    for choice in _tuning.CHOICES.values():
        monkeypatch.setattr(_tuning_probes, choice.probe, probe)
    monkeypatch.setattr(_tuning, "apply", lambda *args, **kwargs: None)
    started = []
    monkeypatch.setattr(_compile_ahead, "start", lambda: started.append(1) or None)
    monkeypatch.setattr(_compile_ahead, "finish", lambda child, timeout_s=0.0: None)
    _tuning.measure(ahead=True)  # no child (start gave None): measured once, as before
    assert started == [1] and clocks == [(0.03, 6)] * len(_tuning.CHOICES)
    clocks.clear()
    monkeypatch.setattr(_compile_ahead, "start", lambda: object())  # a child "runs"
    result = _tuning.measure(ahead=True)
    n = len(_tuning.CHOICES)
    assert clocks == [(0.0, 1)] * n + [(0.03, 6)] * n  # once each, then the measurement
    assert set(result["choices"]) == set(_tuning.CHOICES)
    clocks.clear()
    monkeypatch.setattr(_compile_notice, "compiled_seconds", lambda: 0.0)  # a warm cache
    _tuning.measure(ahead=True)
    assert clocks == [(0.0, 1)] + [(0.03, 6)] * n  # the first probe once, then measured
