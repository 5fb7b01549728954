"""The constants of the compiled kernels that look tunable but are not tuned, and why:
what ``kioku tune`` lists after the measured choices (:data:`FIXED`)."""

from __future__ import annotations

from typing import NamedTuple


class Fixed(NamedTuple):
    """A constant that looks tunable but is not tuned: ``why``."""

    name: str
    module: str
    why: str


_COMPILED = "a compile-time constant of the Numba code (baked into the cached machine code)"
FIXED = (
    Fixed("NR", "kioku.kernels._packed", f"panel width, set from the vector width; {_COMPILED}"),
    Fixed(
        "MR",
        "kioku.kernels._packed",
        f"rows of the wide register tile (which tile runs: TALL_MIN_ROWS); {_COMPILED}",
    ),
    Fixed("KC", "kioku.kernels._loop_gemms", f"rows per weight-gradient pass; {_COMPILED}"),
    Fixed(
        "CHUNK_STEPS",
        "kioku.kernels._loop_gemms",
        f"most steps per weight-gradient pass (a pipelined backward's hand-off unit); {_COMPILED}",
    ),
    Fixed("GC", "kioku.kernels._loop_gemms", f"gate columns per transpose; {_COMPILED}"),
    Fixed("SMALL_ROWS", "kioku.kernels._primitives", f"dot-loop row limit; {_COMPILED}"),
    Fixed(
        "L2_BYTES",
        "kioku.kernels._primitives",
        "a run-time value, but numba_lstm and _training_plan import it by name",
    ),
)
