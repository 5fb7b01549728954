"""The line kioku prints while its kernels compile cold (kernels/_compile_notice.py)."""

from __future__ import annotations

import threading
import time

import pytest

from kioku.kernels import _compile_notice
from kioku.kernels._compile_notice import MESSAGE, Notice

numba = pytest.importorskip("numba")


class _Event:
    """What the notice reads of a ``numba:compile`` event: ``data["dispatcher"]``."""

    def __init__(self, module: str) -> None:
        def function() -> None:
            pass

        function.__module__ = module
        self.data = {"dispatcher": type("D", (), {"py_func": function})()}


def _notice(delay: float) -> tuple[Notice, list[str], threading.Event]:
    lines: list[str] = []
    said = threading.Event()

    def write(line: str) -> None:
        lines.append(line)
        said.set()

    return Notice(write, delay), lines, said


def test_a_long_compilation_of_a_kioku_kernel_says_so_once():
    notice, lines, said = _notice(0.05)
    ours = _Event("kioku.kernels._lstm_loops")
    notice.on_start(ours)
    notice.on_start(_Event("kioku.kernels._packed"))  # a callee, inside it
    assert said.wait(5)
    notice.on_end(_Event("kioku.kernels._packed"))
    notice.on_end(ours)
    notice.on_start(ours)  # a later compilation: said already
    time.sleep(0.15)
    notice.on_end(ours)
    assert lines == [MESSAGE]


def test_a_short_compilation_says_nothing():
    notice, lines, _ = _notice(0.2)
    for _ in range(3):
        notice.on_start(_Event("kioku.kernels._primitives"))
        notice.on_end(_Event("kioku.kernels._primitives"))
    time.sleep(0.4)
    assert lines == [] and notice.timer is None and notice.depth == 0


def test_other_packages_compilations_are_not_watched():
    notice, lines, _ = _notice(0.0)
    for module in ("numba.np.arraymath", "kiokuextra.kernels", "__main__"):
        notice.on_start(_Event(module))
    time.sleep(0.1)
    assert lines == [] and notice.depth == 0
    notice.on_end(_Event("kioku.nn.lstm"))  # an end without its start: ignored
    assert notice.depth == 0


class _Counting(Notice):
    def __init__(self) -> None:
        super().__init__(lambda line: None, 60.0)
        self.starts: list[str] = []

    def on_start(self, event: object) -> None:
        self.starts.append(event.data["dispatcher"].py_func.__module__)
        super().on_start(event)


def test_a_real_compilation_reaches_the_notice_and_a_cache_hit_does_not():
    from numba import njit
    from numba.core import event

    namespace = {"__name__": "kioku._compile_notice_probe"}
    exec("def twice(x):\n    return 2 * x\n", namespace)
    twice = njit(namespace["twice"])
    notice = _Counting()
    with event.install_listener("numba:compile", _compile_notice.listener(notice)):
        assert twice(3) == 6  # compiles
        assert notice.starts == ["kioku._compile_notice_probe"]
        assert notice.depth == 0 and notice.timer is None  # its end cancelled the timer
        assert twice(4) == 8  # compiled already: no event
    assert notice.starts == ["kioku._compile_notice_probe"]


def test_the_process_notice_is_installed_with_the_kernels():
    import kioku.kernels  # noqa: F401

    assert _compile_notice._installed and _compile_notice.install()


def test_the_variable_silences_the_line(monkeypatch, capsys):
    monkeypatch.setenv("KIOKU_COMPILE_NOTICE", "on")
    _compile_notice._stderr("said")
    monkeypatch.setenv("KIOKU_COMPILE_NOTICE", "Off ")
    _compile_notice._stderr("not said")
    assert capsys.readouterr().err == "said\n"


def test_the_outermost_compilations_are_added_up(monkeypatch):
    notice, lines, _ = _notice(60.0)
    ours, callee = _Event("kioku.kernels._lstm_loops"), _Event("kioku.kernels._packed")
    notice.on_start(ours)
    notice.on_start(callee)  # nested: counted once, inside its caller
    time.sleep(0.05)
    notice.on_end(callee)
    notice.on_end(ours)
    notice.on_start(_Event("numba.np.arraymath"))  # not ours: not counted
    time.sleep(0.05)
    first = notice.seconds
    assert 0.05 <= first < 1.0
    notice.on_start(ours)  # a later compilation adds to it
    time.sleep(0.02)
    notice.on_end(ours)
    assert first + 0.02 <= notice.seconds < first + 1.0
    assert lines == []  # shorter than the delay: nothing said
    monkeypatch.setattr(_compile_notice, "_installed", [notice])
    assert _compile_notice.compiled_seconds() == notice.seconds


def test_a_time_says_its_compiling_apart(monkeypatch):
    notice = Notice(lambda line: None, 60.0)
    monkeypatch.setattr(_compile_notice, "_installed", [notice])
    notice.seconds = 10.0
    assert _compile_notice.with_compiling(29.26, 9.7) == "29.3 s"  # under a second compiled
    notice.seconds = 117.4
    assert (
        _compile_notice.with_compiling(136.04, 10.0)
        == "136.0 s (107 s of it compiling the kernels, once)"
    )
    monkeypatch.setattr(_compile_notice, "_installed", [])
    assert _compile_notice.compiled_seconds() == 0.0
