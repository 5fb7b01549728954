"""How much of the cores OTHER processes used while this one measured something.

A timing taken while other processes compete for the cores describes a busy machine,
not this one. ``/proc/stat`` gives the cores' busy time; this process's own CPU time
(``os.times()``, children included) is subtracted, which leaves the share of all cores
that other processes used. Used by the kernels' tuning (a measurement on a busy machine
is repeated when it is idle) and by :mod:`kioku.bench.load` (a busy run is not valid).
NumPy-free and kioku-free: only the standard library.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NamedTuple

MAX_OTHERS_SHARE = 0.25  # other processes used more than this share of the cores: busy


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
