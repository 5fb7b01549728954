"""``kioku tune``: measure the fast path's choices on this machine now, show them, or forget them.

The choices and how they are measured: :mod:`kioku.kernels._tuning`. The other commands
that train or infer measure them on their first use when no tuning of this machine is
stored; ``KIOKU_TUNING=off`` keeps the hand-set defaults."""

from __future__ import annotations

import argparse
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
    from ..nn import tuning

    identity = tuning.machine()
    path = tuning.path_for(identity)
    if args.reset:
        removed = tuning.forget()
        print(f"deleted {removed}" if removed else f"no tuning file to delete ({path})")
        return 0
    for line in machine_lines(identity):
        print(line)
    if args.show:
        try:
            content = tuning.stored(identity)
        except tuning.TuningFileError as error:
            message = f"{path}: cannot be used ({error}); `kioku tune` measures again"
            raise ValueError(message) from None
        if content is None:
            print(f"not tuned yet: no {path}; the defaults are in force")
            for line in choice_lines(None):
                print(line)
            return 0
        print(f"measured {content.get('measured_at')}, stored in {path}")
    else:
        print(tuning.PROGRESS, file=sys.stderr, flush=True)
        compiled = tuning.compiled_seconds()
        content, path = tuning.measure_and_store(identity)
        print(
            f"measured in {tuning.with_compiling(content['seconds'], compiled)}, written to {path}"
        )
    share = content.get("others_share")
    if isinstance(share, float):
        print(f"other processes' share of the cores while measuring: {share:.0%}")
    if tuning.busy_while_measuring(content, identity):
        print(
            f"the machine was busy ({tuning.busy_figure(content, identity)}): the timings, "
            "and so the choices, reflect that; run `kioku tune` again when it is idle"
        )
    for line in choice_lines(content["choices"]):
        print(line)
    if tuning.tuning_off():
        print("KIOKU_TUNING=off is set: the defaults stay in force while it is")
    return 0


def machine_lines(identity: dict) -> list[str]:
    """The CPU, its instruction set, versions and thread budget: what the key hashes."""
    versions = ", ".join(f"{name} {v or 'absent'}" for name, v in identity["versions"].items())
    lines = [
        f"CPU: {identity['cpu']}",
        f"instruction set: {' '.join(identity['flags']) or 'none of the flags kioku reads'}",
    ]
    if identity.get("target"):  # NUMBA_CPU_NAME / NUMBA_CPU_FEATURES
        target = ", ".join(f"{k}={v}" for k, v in sorted(identity["target"].items()))
        lines.append(f"kernels compiled for: {target}")
    return lines + [f"threads: {identity['threads']}; {versions}"]


def choice_lines(stored: dict | None) -> list[str]:
    """One line per choice (value, default, the timings behind it), then the constants
    that are not tuned and why."""
    from ..nn import tuning

    lines = []
    for choice in tuning.choices():
        name, default = choice["name"], choice["default"]
        entry = (stored or {}).get(name, {})
        value = entry.get("value", default)
        lines.append(f"{name} = {tuning.shown(value)} (default {tuning.shown(default)}): "
                     f"{choice['what']}")  # fmt: skip
        levels = entry.get("levels") or []
        if levels:
            timings = "; ".join(
                f"{level['quantity']:g}: {level['on_s'] * 1e3:.3g} vs {level['off_s'] * 1e3:.3g}"
                for level in levels
            )
            lines.append(f"    ms per call, guarded path on vs off, by {choice['unit']}: {timings}")
        if entry.get("note"):
            lines.append(f"    {entry['note']}")
    for entry in tuning.fixed():
        shown = entry["name"] if entry["value"] is None else f"{entry['name']} = {entry['value']}"
        lines.append(f"{shown}: not tuned, {entry['why']}")
    return lines
