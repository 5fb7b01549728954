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
