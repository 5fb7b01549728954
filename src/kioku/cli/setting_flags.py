"""The command line derived from declared settings: one flag per field of a settings
dataclass, in its group, with its help, its default and the range it expects (see
:mod:`kioku.train.settings_fields`). A field declared there is a flag here, with no
other edit."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_setting_flags(
    parser: argparse.ArgumentParser, record: type, shown_default: Callable[[str], str]
) -> dict[str, argparse._ArgumentGroup]:
    """One flag per declared setting of the dataclass ``record``, in its group, with its
    help, its default as ``shown_default(name)`` gives it and what it expects; returns the
    groups by title. Every flag's default is ``None`` ("not given"), and its value is
    checked by the declaration when the settings are built."""
    from ..train.settings_fields import GROUPS, declared

    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    for name, field in declared(record).items():
        spec = field.spec
        default = spec.default_text or shown_default(name)
        expects = "" if field.kind in (bool, str) else f"; {field.expected()}"
        options: dict = {"dest": name, "help": f"{spec.help} (default: {default}{expects})"}
        if field.kind is bool:
            options["action"] = argparse.BooleanOptionalAction if spec.negatable else "store_const"
            if not spec.negatable:
                options["const"] = True
        elif spec.choices is not None:
            options["choices"] = [c for c in spec.choices if c is not None]
        else:
            options["type"] = field.kind
        groups[spec.group].add_argument(field.flag, **options)
    return groups


def add_bounded(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: type,
    default: int | float | None,
    help: str,
    default_text: str | None = None,
    **bounds: float | bool,
) -> None:
    """A numeric ``flag`` of ``kind`` (int or float) whose range (``minimum``,
    ``maximum``, ``above``, ``below`` as in :class:`~kioku.train.settings_fields.Setting`)
    is declared here, beside its help, shown in ``--help`` and checked by
    :func:`bounds_problem` before the command does any work."""
    from ..train.settings_fields import Declared, Setting

    dest = flag[2:].replace("-", "_")
    field = Declared(dest, kind, default is None, default, Setting(help, "", **bounds))
    parser.set_defaults(_bounds={**(parser.get_default("_bounds") or {}), dest: field})
    shown = default_text or str(default)
    parser.add_argument(
        flag, type=kind, default=default, help=f"{help} (default: {shown}; {field.expected()})"
    )


def bounds_problem(args: argparse.Namespace) -> str | None:
    """``--flag: expected ..., found ...`` for the first flag of :func:`add_bounded` whose
    value is out of its range, else ``None``."""
    for dest, field in (getattr(args, "_bounds", None) or {}).items():
        try:
            field.check(getattr(args, dest))
        except (ValueError, TypeError) as error:
            return f"{field.flag}: {error.detail}"
    return None
