"""The first tuning's compiling, on two cores instead of one.

Numba compiles one function at a time, in one thread. The first tuning on a machine
(:func:`kioku.kernels._tuning.measure`) runs every path it times, so on a fresh install
it first compiles nearly every kernel: 108 s of its 136 s on a 2-core Intel Xeon, one
core busy and the other idle. Numba's disk cache is shared between processes, and a
process that needs a function another has compiled and stored loads it instead of
compiling it. So before measuring, :func:`compile_ahead` starts a second Python process
that runs every probe once in reverse order while this one runs them once in order;
each stores what it compiles, and where they meet, each finds the rest in the cache.
Then the child has ended and the measurement starts, on a quiet machine, with nothing
left to compile. The first ``kioku train`` of a fresh install (empty Numba and tuning
caches; Intel Xeon, 2 cores, ``cores-busy`` 0 %) tuned in 135.8 s with one process, 108
s of it compiling, and in 103.1 s with two (69 s of compiling in this one); 109 s to its
first step instead of 142.

Skipped with fewer than two usable cores, under an MPI launcher (a rank should not
fork), in a frozen application, or with ``KIOKU_COMPILE_AHEAD=off``. The child's failure
or its absence changes no result: whatever it did not compile, the measurement compiles
as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

VARIABLE = "KIOKU_COMPILE_AHEAD"
# the child runs the probes once each, in reverse order (see kernels/_tuning.measure)
_CHILD = (
    "from kioku.kernels import _tuning; "
    "_tuning.measure(block_s=0.0, rounds=1, reverse=True, confirm=False)"
)
# environment variables that MPI launchers set in each rank
_MPI_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
# a child still compiling after this long is stopped (the measurement compiles the rest)
TIMEOUT_S = 900.0
# the first probe compiling less than this: the cache is warm, the child is not needed
WARM_S = 0.5


def wanted() -> bool:
    """Whether a child process would help: two usable cores or more, not an MPI rank, a
    Python interpreter to start (not a frozen application, whose executable is the
    application), ``KIOKU_COMPILE_AHEAD`` not ``off``."""
    from ._threads import usable_cores

    if os.environ.get(VARIABLE, "").strip().lower() in ("off", "0", "no", "false"):
        return False
    if getattr(sys, "frozen", False) or not sys.executable:
        return False
    if any(name in os.environ for name in _MPI_VARIABLES):
        return False
    return usable_cores() >= 2


def _child_environment() -> dict[str, str]:
    """This process's environment, with kioku's own folder first on the child's path
    (kioku may have been imported from a path only this process knows) and the compile
    notice off (the child's stderr is not shown)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["KIOKU_COMPILE_NOTICE"] = "off"
    return env


def start() -> subprocess.Popen | None:
    """The child process of the module docstring, started, or ``None`` where it is not
    :func:`wanted` or cannot start."""
    if not wanted():
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-c", _CHILD], env=_child_environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError:
        return None


def finish(child: subprocess.Popen | None, timeout_s: float = TIMEOUT_S) -> None:
    """Wait for ``child`` (at most ``timeout_s``, then stop it; 0: stop it now): nothing
    of it may run while the measurement times the kernels."""
    if child is None:
        return
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def compile_ahead(first: Callable[[], object], rest: Callable[[], object]) -> None:
    """Run ``first()`` then ``rest()`` (the first probe once, then every other once, in
    order) here while the child runs them all in reverse order, and return when both have.
    Where ``first`` compiled nothing (a warm cache: a re-tuning, ``kioku tune``) the child
    is stopped and ``rest`` not run, which saves running every probe once in two
    processes (a warm ``kioku tune`` on the 2-core Intel Xeon: 59.7 -> 50.9 s). Nothing
    where there is no child: the measurement then compiles as it goes, as fast as one
    process can."""
    from ._compile_notice import compiled_seconds

    child = start()
    if child is None:
        return
    try:
        before = compiled_seconds()
        first()
        if compiled_seconds() - before < WARM_S:
            finish(child, timeout_s=0.0)
            return
        rest()
    except BaseException:  # a failed probe or Ctrl-C: the child is stopped, not awaited
        finish(child, timeout_s=0.0)
        raise
    finish(child)
