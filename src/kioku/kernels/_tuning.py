"""The fast path's choices, measured on the machine that runs them and kept in the user's cache.

The thresholds that decide the kernels' paths (when to split a batch over threads, when
to run two directions at once, when a step projects its own inputs, when NumPy's GEMMs
stay on one BLAS thread) were first set by hand on one CPU. Here each is a
:class:`Choice`: its name, the module attribute the kernels read at call time, today's
constant as its default, the candidates a quick micro-benchmark times
(:mod:`._tuning_probes`) and the rule that turns the timings into a value. Where the
results are kept, and the machine's identity: :mod:`._tuning_store`.

Results live in ``$XDG_CACHE_HOME/kioku/tuning-<key>.json`` (default ``~/.cache/kioku``),
``key`` a hash of the CPU model, the instruction-set flags that matter, the NumPy /
Numba / kioku versions and the thread budget. ``KIOKU_TUNING``: ``off`` uses the
defaults, ``now`` measures again, unset (or ``auto``) reuses a stored file and measures
where there is none. Nothing is measured on import: the stored file is read when the
fast path is first imported (:func:`value`), and a measurement happens only through
:func:`ensure` (what the ``kioku`` commands that train or infer call) or ``kioku tune``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import _compile_notice, _cpu_load
from . import _tuning_store as _store
from ._tuning_choices import (  # noqa: F401  (read through this module)
    CHOICES,
    MIN_GAIN,
    NO_LIMIT,
    Choice,
    confirmed,
    pick,
    shown,
)
from ._tuning_fixed import FIXED, Fixed  # noqa: F401  (read through this module)
from ._tuning_store import (  # noqa: F401  (the file's side, used through this module)
    FLAGS,
    SCHEMA,
    TuningFileError,
    cache_folder,
    cpu,
    key,
    machine,
    thread_budget,
    tuning_path,
)

VARIABLE = "KIOKU_TUNING"
PROGRESS = (
    "kioku: tuning kernels for this CPU (once, about a minute; a few minutes the first time, "
    "when they also compile)..."
)


_PLANNERS = ("kioku.kernels._training_plan", "kioku.kernels._inference_plan")


def default(name: str) -> float:
    """The hand-set constant of choice ``name`` (what ``KIOKU_TUNING=off`` uses)."""
    return CHOICES[name].default


def defaults() -> dict[str, float]:
    """Every choice's default, by name."""
    return {name: choice.default for name, choice in CHOICES.items()}


# --- which values are in force -----------------------------------------------------------

_state: dict = {"values": None, "source": None, "path": None, "noted": set()}


def mode() -> str:
    """``KIOKU_TUNING`` as ``off``, ``now`` or ``auto`` (unset); anything else is an error."""
    raw = (os.environ.get(VARIABLE) or "auto").strip().lower()
    if raw in ("off", "0", "no", "false"):
        return "off"
    if raw in ("now", "auto", "on", "1", "yes"):
        return "now" if raw == "now" else "auto"
    raise ValueError(f"{VARIABLE}: expected off, now or auto, found {raw!r}")


def current(name: str) -> float:
    """The value of choice ``name`` put in force so far, else its default; reads no file
    (what ``_threads``' definitions use: it is imported with ``import kioku``)."""
    values = _state["values"]
    return CHOICES[name].default if values is None else values[name]


def value(name: str) -> float:
    """The value of choice ``name`` in force: on the first call, a stored tuning file of
    this machine is read and applied (unless ``KIOKU_TUNING=off``); never measures."""
    if _state["values"] is None:
        _load_stored()
    return _state["values"][name]


def in_force() -> dict:
    """What the kernels read now: ``{"source", "path", "values", "defaults"}``; ``source``
    says whether the values are the defaults (and why) or a tuning (file or measured)."""
    if _state["values"] is None:
        _load_stored()
    return {
        "source": _state["source"],
        "path": _state["path"],
        "values": dict(_state["values"]),
        "defaults": defaults(),
    }


def apply(values: dict[str, float], source: str, path: str | None = None) -> None:
    """Put ``values`` (every choice, checked against its bounds) in force: the attribute
    of each choice's module is set (modules not imported yet read it from here when they
    are), so the next kernel call uses them."""
    checked = check_values(values)
    changed = checked != _state["values"]
    _state.update(values=checked, source=source, path=path)
    for name, choice in CHOICES.items():
        module = sys.modules.get(choice.module)
        if module is not None:
            setattr(module, name, checked[name])
            _sync(module)
    for planner in _PLANNERS if changed else ():  # a plan keeps the path chosen when made
        module = sys.modules.get(planner)
        if module is not None and hasattr(module, "forget_all"):
            module.forget_all()


def _sync(module: object) -> None:
    """Let a module whose compiled code reads a choice from elsewhere than its attribute
    (:mod:`._tiles`: a C integer) take the attribute's new value."""
    sync = getattr(module, "sync_tuned", None)
    if sync is not None:
        sync()


def _load_stored() -> None:
    try:
        off = mode() == "off"
    except ValueError:  # a bad KIOKU_TUNING is reported by ensure(); the import goes on
        off = True
    if off:
        apply(defaults(), "defaults (KIOKU_TUNING=off)")
        return
    stored, path = read_stored(note=_note_once)
    if stored is None:
        apply(defaults(), "defaults (not tuned on this machine yet)")
    else:
        apply(stored, "tuned", str(path))


def _note_once(message: str) -> None:
    if message not in _state["noted"]:
        _state["noted"].add(message)
        print(f"kioku: {message}", file=sys.stderr, flush=True)


def check_values(values: object) -> dict[str, float]:
    """``values`` as a dict of every choice's value; raises :class:`TuningFileError`
    naming the first one missing, of the wrong type or out of its bounds."""
    if not isinstance(values, dict):
        raise TuningFileError(f"choices: expected an object, found {type(values).__name__}")
    checked = {}
    for name, choice in CHOICES.items():
        if name not in values:
            raise TuningFileError(f"{name}: missing")
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TuningFileError(f"{name}: expected a finite number, found {v!r}")
        low, high = choice.bounds
        if not low <= v <= high or (choice.integer and v != int(v)):
            kind = "an integer" if choice.integer else "a number"
            raise TuningFileError(f"{name}: expected {kind} in [{low:g}, {high:g}], found {v!r}")
        checked[name] = int(v) if choice.integer else float(v)
    return checked


def read_file(path: str | os.PathLike, expected_key: str) -> dict:
    """A tuning file's content (:func:`._tuning_store.read_file`) with ``values``, every
    choice's value checked against its bounds; raises :class:`TuningFileError` saying
    why it cannot be used, :class:`FileNotFoundError` when there is none."""
    content = _store.read_file(path, expected_key)
    content["values"] = check_values({n: c.get("value") for n, c in content["choices"].items()})
    return content


def write_file(result: dict, identity: dict | None = None) -> Path:
    """Store a measurement (:func:`measure`'s result), its values checked, as this
    machine's tuning file; returns its path."""
    check_values(_values_of(result))
    return _store.write_file(result, machine() if identity is None else identity)


def read_stored(note: Callable[[str], None] | None = None) -> tuple[dict | None, Path]:
    """This machine's stored values (or ``None``: no file, or a file that cannot be used,
    which ``note`` is told about, once) and the file's path."""
    identity = machine()
    path = tuning_path(identity)
    try:
        return read_file(path, key(identity))["values"], path
    except FileNotFoundError:
        return None, path
    except (TuningFileError, OSError, UnicodeDecodeError) as error:
        if note is not None:
            note(f"ignoring the tuning file {path}: {error}; the defaults stay until it is "
                 "measured again")  # fmt: skip
        return None, path


def reset() -> Path | None:
    """Delete this machine's tuning file; returns its path, or ``None`` if there was none.
    The defaults are in force after it."""
    path = tuning_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    finally:
        apply(defaults(), "defaults (tuning file deleted)")
    return path


# --- measuring -------------------------------------------------------------------------------


def measure(log: Callable[[str], None] | None = None, block_s: float = 0.03, rounds: int = 6,
            scale: float = 1.0, ahead: bool = False, reverse: bool = False,
            confirm: bool = True, names: list[str] | None = None) -> dict:  # fmt: skip
    """Measure every choice now (each probe runs with the choices before it already in
    force), put the results in force and return them (``{"choices": {name: {"value",
    "default", "unit", "levels", "note"}}, "seconds"}``). ``block_s``, ``rounds`` and
    ``scale`` (of the probes' sequence lengths) exist for the tests' tiny runs; ``ahead``:
    first compile on two cores (:mod:`._compile_ahead`), ``reverse``: the probes in
    reverse order (what its second process runs); ``confirm``: a choice that departs from
    its default is measured a second time (:func:`~._tuning_choices.confirmed`);
    ``names``: only these choices (default: all)."""
    from . import _compile_ahead, _tuning_probes

    started = time.perf_counter()
    if ahead:
        order = list(CHOICES)

        def once(some: list[str]) -> None:
            measure(block_s=0.0, rounds=1, scale=scale, confirm=False, names=some)

        _compile_ahead.compile_ahead(lambda: once(order[:1]), lambda: once(order[1:]))
    probe = _cpu_load.LoadProbe()
    first = probe.sample()
    values = defaults()
    apply(values, "defaults (being measured)")
    clock = _tuning_probes.Clock(block_s, rounds)
    choices = {}
    for name, choice in reversed(CHOICES.items()) if reverse else CHOICES.items():
        if names is not None and name not in names:
            continue
        probe_levels = getattr(_tuning_probes, choice.probe)
        levels, note = probe_levels(choice, clock, scale)
        values[name] = pick(choice, levels)
        if values[name] != choice.default and confirm:  # a departure is measured again
            departed, once = values[name], levels
            second = probe_levels(choice, clock, scale)[0]
            values[name], levels = confirmed(choice, once, second)
            again = ""
            if values[name] == choice.default and pick(choice, second) == choice.default:
                third = probe_levels(choice, clock, scale)[0]  # one against one: a third
                values[name], levels = confirmed(choice, once, second, third)
                again = " or a third"
            if values[name] == choice.default:
                note = (f"{shown(departed)} measured first, not confirmed by a second"
                        f"{again} measurement")  # fmt: skip
        apply(values, "measured now")
        choices[name] = {
            "value": values[name],
            "default": choice.default,
            "unit": choice.unit,
            "levels": levels,
            "note": note,
        }
        if log is not None:
            log(f"  {name} = {shown(values[name])} (default {shown(choice.default)})")
    return {
        "choices": choices,
        "seconds": round(time.perf_counter() - started, 3),
        "load_average": _store.load_average(),
        "others_share": _cpu_load.others_share(first, probe.sample()),
    }


def ensure(log: Callable[[str], None] | None = None) -> dict:
    """For a command's first use of the fast path: the stored tuning of this machine put
    in force, or measured (with a progress line on ``log``, default stderr) and stored
    when there is none, it cannot be used, or ``KIOKU_TUNING=now``. Nothing with
    ``KIOKU_TUNING=off`` or when the fast backend is not in use. Returns
    :func:`in_force`."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    wanted = mode()
    if wanted == "off" or not _fast_path_in_use():
        return in_force()
    identity = machine()
    if wanted == "auto":
        stored, path = read_stored(note=_note_once)
        if stored is not None and not _busy_then_idle_now(path, identity):
            apply(stored, "tuned", str(path))
            return in_force()
        if stored is not None:
            log("kioku: the stored tuning was measured on a busy machine; the machine is idle "
                "now, so it is measured again")  # fmt: skip
    log(PROGRESS)
    compiling = _compile_notice.compiled_seconds()
    try:
        result = measure(ahead=True)
    except Exception as error:  # a failed measurement must not stop the command
        apply(defaults(), "defaults (the measurement failed)")
        log(f"kioku: tuning failed ({type(error).__name__}: {error}); the defaults are used")
        return in_force()
    took = _compile_notice.with_compiling(result["seconds"], compiling)
    try:
        path = write_file(result, identity)
    except OSError as error:
        apply(_values_of(result), "tuned (measured now, not stored)")
        log(f"kioku: tuned in {took}, but could not store it ({error}): "
            "this process uses it, the next one measures again")  # fmt: skip
        return in_force()
    apply(_values_of(result), "tuned (measured now)", str(path))
    log(f"kioku: tuned in {took}, saved to {path}")
    if busy_while_measuring(result, identity):
        log(f"kioku: the machine was busy while tuning ({busy_figure(result, identity)}): it is "
            "measured again on the first use when idle, or run `kioku tune` then")  # fmt: skip
    return in_force()


MAX_OTHERS_SHARE = _cpu_load.MAX_OTHERS_SHARE  # as a benchmark run is judged (kioku.bench.load)


def busy_while_measuring(content: dict, identity: dict) -> bool:
    """Whether other processes took more than :data:`MAX_OTHERS_SHARE` of the cores while
    the tuning in ``content`` was measured (``others_share``: ``/proc/stat`` less this
    process's own CPU time, :mod:`._cpu_load`). A file from before that figure was kept
    is judged by its 1-minute load average less the threads the measurement itself ran
    on. A figure that is not a number counts as not measured."""
    share = _number(content.get("others_share"))
    if share is not None:
        return share > MAX_OTHERS_SHARE
    load = _first_load(content)
    return load is not None and load - identity["threads"] > 0.5 * identity["threads"]


def busy_figure(content: dict, identity: dict) -> str:
    """What :func:`busy_while_measuring` judged, in words."""
    share = _number(content.get("others_share"))
    if share is not None:
        return f"other processes used {share:.0%} of the cores"
    return f"load {_first_load(content)} on {identity['threads']} threads"


def _number(value: object) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _first_load(content: dict) -> float | None:
    load = content.get("load_average")
    return _number(load[0]) if isinstance(load, list) and load else None


def _busy(load: list[float] | None, identity: dict) -> bool:
    """Whether a 1-minute load average (``load[0]``), read before this process did any
    work, says more than half of the threads kioku may use are taken."""
    return bool(load) and load[0] > 0.5 * identity["threads"]


def _busy_then_idle_now(path: Path, identity: dict) -> bool:
    """Whether the tuning stored at ``path`` was measured on a busy machine and the
    machine is idle now: then the first use measures again, so that a busy moment's
    choices do not stay for good."""
    try:
        content = _store.read_file(path, key(identity))
    except (OSError, ValueError):
        return False
    return busy_while_measuring(content, identity) and not _busy(_store.load_average(), identity)


def _values_of(result: dict) -> dict[str, float]:
    return {name: entry["value"] for name, entry in result["choices"].items()}


def _fast_path_in_use() -> bool:
    from . import backend_name

    try:
        return backend_name() == "numba"
    except ValueError:  # a bad KIOKU_KERNELS: the command reports it itself
        return False
