"""Whether a tuning was measured on a busy machine: judged by the share of the cores OTHER
processes used while it ran, not by a load average that counts the measurement itself."""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from kioku.kernels import _cpu_load, _tuning  # noqa: E402

MACHINE = {"threads": 2}


@pytest.mark.parametrize(
    "content, busy",
    [
        ({"others_share": 0.02}, False),
        ({"others_share": 0.25}, False),
        ({"others_share": 0.26}, True),
        # a 26 s measurement on both threads leaves a 1-minute load average near 1.1 on
        # two threads by itself: that alone is not a busy machine (the old rule said it was)
        ({"load_average": [1.12, 0.6, 0.3]}, False),
        ({"others_share": None, "load_average": [1.12, 0.6, 0.3]}, False),
        ({"load_average": [3.5, 2.0, 1.0]}, True),  # others on top of the measurement
        ({"others_share": 0.01, "load_average": [9.0, 9.0, 9.0]}, False),  # the share decides
        ({}, False),
    ],
)
def test_busy_while_measuring(content, busy):
    assert _tuning.busy_while_measuring(content, MACHINE) is busy


@pytest.mark.parametrize(
    "content", [{"others_share": "high"}, {"others_share": True}, {"others_share": float("nan")},
                {"load_average": "x"}, {"load_average": ["x"]}, {"load_average": []}],
)  # fmt: skip
def test_a_hostile_figure_counts_as_not_measured(content):
    assert _tuning.busy_while_measuring(content, MACHINE) is False
    assert isinstance(_tuning.busy_figure(content, MACHINE), str)


def test_the_figure_says_what_was_judged():
    assert _tuning.busy_figure({"others_share": 0.4}, MACHINE) == (
        "other processes used 40% of the cores"
    )
    assert _tuning.busy_figure({"load_average": [3.5]}, MACHINE) == "load 3.5 on 2 threads"


def test_the_measurement_records_the_others_share(monkeypatch):
    """measure() samples the cores before its first probe and after its last; its own
    CPU time does not count (the probes are replaced by a busy loop of this process)."""
    busy, own = [100.0, 160.0], [50.0, 108.0]  # the machine's busy seconds, this process's

    class Probe(_cpu_load.LoadProbe):
        def __init__(self):
            self.n = 0

        def sample(self):
            n, self.n = self.n, self.n + 1
            return _cpu_load.Sample(_cpu_load.CpuTimes(busy[n], 200.0 + 100.0 * n, 2), own[n], n)

    monkeypatch.setattr(_cpu_load, "LoadProbe", Probe)
    before = _tuning.in_force()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(_tuning, "CHOICES", {})  # no probe: measure() only samples
            result = _tuning.measure()
    finally:
        _tuning.apply(before["values"], before["source"], before["path"])
    assert result["others_share"] == pytest.approx((60.0 - 58.0) / 100.0)
    assert not _tuning.busy_while_measuring(result, MACHINE)
