"""``kioku tune``: measure the fast path's choices on this machine now, show them, or forget them.

The choices and how they are measured: :mod:`kioku.kernels._tuning`. The other commands
that train or infer measure them on their first use when no tuning of this machine is
stored; ``KIOKU_TUNING=off`` keeps the hand-set defaults."""

from __future__ import annotations

import argparse
import importlib
import sys

HELP = "Measure the kernels' thresholds on this CPU and store them (--show, --reset)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--show",
        action="store_true",
        help="print the stored choices of this machine without measuring (default: measure)",
    )
    what.add_argument(
        "--reset",
        action="store_true",
        help="delete this machine's tuning file: the defaults are used until the next "
        "measurement (default: off)",
    )


def run(args: argparse.Namespace) -> int:
    from ..kernels import _tuning

    identity = _tuning.machine()
    path = _tuning.tuning_path(identity)
    if args.reset:
        removed = _tuning.reset()
        print(f"deleted {removed}" if removed else f"no tuning file to delete ({path})")
        return 0
    for line in machine_lines(identity):
        print(line)
    if args.show:
        try:
            content = _tuning.read_file(path, _tuning.key(identity))
        except FileNotFoundError:
            print(f"not tuned yet: no {path}; the defaults are in force")
            for line in choice_lines(None):
                print(line)
            return 0
        except (_tuning.TuningFileError, UnicodeDecodeError) as error:
            message = f"{path}: cannot be used ({error}); `kioku tune` measures again"
            raise ValueError(message) from None
        print(f"measured {content.get('measured_at')}, stored in {path}")
    else:
        _needs_fast_path()
        print(_tuning.PROGRESS, file=sys.stderr, flush=True)
        result = _tuning.measure()
        path = _tuning.write_file(result, identity)
        content = _tuning.read_file(path, _tuning.key(identity))
        print(f"measured in {result['seconds']:.1f} s, written to {path}")
    load = content.get("load_average")
    if load:
        print(f"load average while measuring: {' '.join(f'{v:g}' for v in load)}")
        if load[0] > 0.5 * identity["threads"]:
            print(
                "the machine was busy: the timings, and so the choices, reflect that; "
                "run `kioku tune` again when it is idle"
            )
    for line in choice_lines(content["choices"]):
        print(line)
    if _tuning.mode() == "off":
        print("KIOKU_TUNING=off is set: the defaults stay in force while it is")
    return 0


def machine_lines(identity: dict) -> list[str]:
    """The CPU, its instruction set, versions and thread budget: what the key hashes."""
    versions = ", ".join(f"{name} {v or 'absent'}" for name, v in identity["versions"].items())
    return [
        f"CPU: {identity['cpu']}",
        f"instruction set: {' '.join(identity['flags']) or 'none of the flags kioku reads'}",
        f"threads: {identity['threads']}; {versions}",
    ]


def choice_lines(choices: dict | None) -> list[str]:
    """One line per choice (value, default, the timings behind it), then the constants
    that are not tuned and why."""
    from ..kernels import _tuning

    lines = []
    for name, choice in _tuning.CHOICES.items():
        entry = (choices or {}).get(name, {})
        value = entry.get("value", choice.default)
        lines.append(f"{name} = {value:g} (default {choice.default:g}): {choice.what}")
        levels = entry.get("levels") or []
        if levels:
            timings = "; ".join(
                f"{level['quantity']:g}: {level['on_s'] * 1e3:.3g} vs {level['off_s'] * 1e3:.3g}"
                for level in levels
            )
            lines.append(f"    ms per call, guarded path on vs off, by {choice.unit}: {timings}")
        if entry.get("note"):
            lines.append(f"    {entry['note']}")
    for fixed in _tuning.FIXED:
        try:
            shown = f"{fixed.name} = {getattr(importlib.import_module(fixed.module), fixed.name)}"
        except ImportError:  # no Numba: the compiled kernels are not there at all
            shown = fixed.name
        lines.append(f"{shown}: not tuned, {fixed.why}")
    return lines


def _needs_fast_path() -> None:
    from ..kernels import available

    if "numba" not in available():
        raise ImportError(
            "the choices belong to the compiled kernels, which need Numba "
            "(pip install 'kioku-lstm[fast]')"
        )
