"""The fast kernels' thresholds, measured on the machine that runs them, for the code above
``nn`` (the ``kioku`` commands): what :mod:`kioku.kernels._tuning` does, without reaching
into :mod:`kioku.kernels` from there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..kernels import _compile_notice, _tuning
from ..kernels import available as _available

PROGRESS = _tuning.PROGRESS
shown = _tuning.shown  # a choice's value as printed ("no limit" for the largest)
TuningFileError = _tuning.TuningFileError
# whether other processes took the cores while a stored tuning was measured, and the figure
busy_while_measuring = _tuning.busy_while_measuring
busy_figure = _tuning.busy_figure
# seconds spent compiling the kernels so far, and a time with its compiling said apart
compiled_seconds = _compile_notice.compiled_seconds
with_compiling = _compile_notice.with_compiling


def prepare(log: Callable[[str], None] | None = None) -> dict:
    """Before a command's first use of the fast path: this machine's stored tuning put in
    force, or measured and stored (a progress line on ``log``, default stderr); nothing
    with ``KIOKU_TUNING=off``. Returns :func:`in_force`."""
    return _tuning.ensure(log)


def in_force() -> dict:
    """The choices the kernels read now: ``{"source", "path", "values", "defaults"}``."""
    return _tuning.in_force()


def machine() -> dict:
    """``{"cpu", "flags", "versions", "threads"}``: what the tuning file's key hashes."""
    return _tuning.machine()


def path_for(identity: dict) -> Path:
    """This machine's tuning file (which may not exist)."""
    return _tuning.tuning_path(identity)


def stored(identity: dict) -> dict | None:
    """This machine's tuning file, checked (``None`` when there is none); raises
    :class:`TuningFileError` (a ``ValueError``) saying why one cannot be used."""
    try:
        return _tuning.read_file(_tuning.tuning_path(identity), _tuning.key(identity))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise TuningFileError(f"not UTF-8 text ({error})") from None


def measure_and_store(identity: dict) -> tuple[dict, Path]:
    """Measure every choice now (seconds), put the results in force and store them;
    returns the stored content and its path. Needs the compiled kernels (Numba)."""
    if "numba" not in _available():
        raise ImportError(
            "the choices belong to the compiled kernels, which need Numba "
            "(pip install 'kioku-lstm[fast]')"
        )
    path = _tuning.write_file(_tuning.measure(ahead=True), identity)
    return _tuning.read_file(path, _tuning.key(identity)), path


def forget() -> Path | None:
    """Delete this machine's tuning file (its path, or ``None`` if there was none)."""
    return _tuning.reset()


def tuning_off() -> bool:
    """Whether ``KIOKU_TUNING=off`` keeps the defaults in force."""
    return _tuning.mode() == "off"


def choices() -> list[dict]:
    """Every tuned choice (``name``, ``default``, ``unit``, ``what``), in order."""
    return [
        {"name": c.name, "default": c.default, "unit": c.unit, "what": c.what}
        for c in _tuning.CHOICES.values()
    ]


def fixed() -> list[dict]:
    """The constants that are not tuned: ``name``, ``value`` (``None`` where the compiled
    kernels are not installed) and ``why``."""
    import importlib

    found = []
    for entry in _tuning.FIXED:
        try:
            value = getattr(importlib.import_module(entry.module), entry.name)
        except ImportError:
            value = None
        found.append({"name": entry.name, "value": value, "why": entry.why})
    return found
