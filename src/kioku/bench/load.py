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

from ..kernels._cpu_load import (  # noqa: F401  (this module's public names, tests use them)
    MAX_OTHERS_SHARE,  # other processes used more than this share of the cores: not valid
    CpuTimes,
    LoadProbe,
    Sample,
    others_share,
    own_cpu_seconds,
    read_proc_stat,
)

MIN_SGEMM_SHARE = 0.75  # an sgemm rate below this share of the reference rate: not valid
BEFORE_S = 3.0  # the idle window measured before the run starts


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
