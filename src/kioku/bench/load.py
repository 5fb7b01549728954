"""How busy the machine was, apart from the benchmark itself, and whether a run is valid.

A speed ratio taken while other processes compete for the cores does not describe a
user's machine: PyTorch and ONNX Runtime run threads that wait for each other and lose
the most under load, so a busy machine flatters a single-threaded library. The probe
reads the cores' busy time from ``/proc/stat`` and subtracts this process's own CPU
time (``os.times()``, children included: the memory and first-call subprocesses are
waited for), which leaves the share of all cores that OTHER processes used. A second
witness is the sgemm rate measured before and after the run, against the machine's
quiet rate when one is given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NamedTuple

MAX_OTHERS_SHARE = 0.25  # other processes used more than this share of the cores: not valid
MIN_SGEMM_SHARE = 0.75  # an sgemm rate below this share of the reference rate: not valid
BEFORE_S = 3.0  # the idle window measured before the run starts


class CpuTimes(NamedTuple):
    """Seconds of CPU, summed over all cores: ``busy`` (not idle or waiting for I/O),
    ``total`` (everything, ``cores`` x wall time), and the number of ``cores``."""

    busy: float
    total: float
    cores: int


class Sample(NamedTuple):
    """The machine's :class:`CpuTimes` and this process's own CPU seconds, at one moment."""

    machine: CpuTimes
    own: float
    wall: float


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def read_proc_stat(path: str = "/proc/stat", cpus: set[int] | None = None) -> CpuTimes | None:
    """The cores' CPU times from ``/proc/stat`` in seconds, or ``None`` without it.

    Only the cores in ``cpus`` count (default: the ones this process may run on, so a
    container on a bigger host is judged on its own cores); where those lines are
    missing, the aggregate ``cpu`` line. Fields: user nice system idle iowait irq
    softirq steal (guest time is already inside user). ``steal`` counts as busy: time a
    hypervisor gave to other machines is time this benchmark did not get."""
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    cpus = _affinity() if cpus is None else cpus
    total_line, per_core = None, []
    for line in lines:
        parts = line.split()
        if not parts or not parts[0].startswith("cpu"):
            continue
        fields = [int(v) for v in parts[1:9]] + [0] * max(0, 9 - len(parts))
        if parts[0] == "cpu":
            total_line = fields
        elif parts[0][3:].isdigit() and (cpus is None or int(parts[0][3:]) in cpus):
            per_core.append(fields)
    chosen = per_core or ([total_line] if total_line else [])
    if not chosen:
        return None
    busy = idle = 0
    for user, nice, system, idle_t, iowait, irq, softirq, steal in chosen:
        busy += user + nice + system + irq + softirq + steal
        idle += idle_t + iowait
    return CpuTimes(busy / tick, (busy + idle) / tick, len(per_core) or 1)


def own_cpu_seconds() -> float:
    """CPU seconds of this process, all its threads and its waited-for children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class LoadProbe:
    """Takes :class:`Sample` s; ``reader`` and ``own`` can be replaced (tests)."""

    def __init__(
        self,
        reader: Callable[[], CpuTimes | None] = read_proc_stat,
        own: Callable[[], float] = own_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader, self.own, self.clock = reader, own, clock

    def sample(self) -> Sample | None:
        """Now, or ``None`` where the machine's CPU times cannot be read."""
        machine = self.reader()
        if machine is None:
            return None
        return Sample(machine, self.own(), self.clock())


def others_share(start: Sample | None, end: Sample | None) -> float | None:
    """Share (0..1) of all cores that processes other than this one kept busy between
    two samples; ``None`` when either is missing or no time passed."""
    if start is None or end is None:
        return None
    total = end.machine.total - start.machine.total
    if total <= 0:
        return None
    busy = end.machine.busy - start.machine.busy
    others = busy - (end.own - start.own)
    return min(1.0, max(0.0, others / total))


def verdict(
    before: float | None,
    during: float | None,
    shapes: dict[str, float | None],
    sgemm_before: float,
    sgemm_after: float,
    quiet_gflops: float | None,
    sgemm_by_shape: dict[str, float] | None = None,
) -> dict:
    """Whether the run is valid, with every reason it is not.

    ``before``/``during``/``shapes``: :func:`others_share` of the idle window before the
    run, of the whole run and of each shape; ``sgemm_before``/``sgemm_after``: GFLOP/s
    measured at both ends of the run; ``quiet_gflops``: the machine's rate when idle,
    if known; ``sgemm_by_shape``: the reference sgemm's median rate in each shape's own
    rounds (the lower of training's and inference's), held to the same share of the
    quiet rate: a slowdown from outside this machine's view (another guest on the same
    host) shows there and not in ``/proc/stat``. A share that could not be measured
    makes the run not valid: a run that cannot show it had the machine is not a
    result."""
    reasons = []
    for label, share in (("before the run", before), ("during the run", during)):
        if share is None:
            reasons.append(f"core usage {label} could not be measured (no /proc/stat)")
        elif share > MAX_OTHERS_SHARE:
            reasons.append(
                f"other processes used {share:.0%} of the cores {label} "
                f"(limit {MAX_OTHERS_SHARE:.0%})"
            )
    for name, share in shapes.items():
        if share is not None and share > MAX_OTHERS_SHARE:
            reasons.append(
                f"other processes used {share:.0%} of the cores during {name} "
                f"(limit {MAX_OTHERS_SHARE:.0%})"
            )
    reference = quiet_gflops if quiet_gflops else max(sgemm_before, sgemm_after)
    against = "the quiet rate" if quiet_gflops else "the other end of the run"
    rates = [
        (f"{label} the run", rate)
        for label, rate in (("before", sgemm_before), ("after", sgemm_after))
    ]
    rates += [(f"during {name}", rate) for name, rate in (sgemm_by_shape or {}).items()]
    for label, rate in rates:
        if rate < MIN_SGEMM_SHARE * reference:
            reasons.append(
                f"sgemm {label} reached {rate:.0f} GFLOP/s, under "
                f"{MIN_SGEMM_SHARE:.0%} of {reference:.0f} ({against})"
            )
    return {
        "valid": not reasons,
        "reasons": reasons,
        "others_share_before": before,
        "others_share_during": during,
        "others_share_by_shape": shapes,
        "sgemm_before_gflops": sgemm_before,
        "sgemm_after_gflops": sgemm_after,
        "sgemm_by_shape_gflops": sgemm_by_shape or {},
        "quiet_sgemm_gflops": quiet_gflops,
        "sgemm_share_of_quiet": (
            None if not quiet_gflops else min(sgemm_before, sgemm_after) / quiet_gflops
        ),
        "limits": {"max_others_share": MAX_OTHERS_SHARE, "min_sgemm_share": MIN_SGEMM_SHARE},
    }


def measure_idle(probe: LoadProbe, seconds: float = BEFORE_S) -> float | None:
    """:func:`others_share` over ``seconds`` of this process sleeping."""
    start = probe.sample()
    time.sleep(seconds)
    return others_share(start, probe.sample())


def results_folder(path: str) -> bool:
    """Whether ``path`` lies under a ``benchmarks/results`` folder (where only valid runs
    may write)."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    return any(a == "benchmarks" and b == "results" for a, b in zip(parts, parts[1:]))
