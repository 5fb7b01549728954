"""A run described by a file: settings as TOML, read and written.

Every run folder holds its settings as ``settings.toml`` (written when the run starts),
and ``kioku train --config FILE`` reads such a file: the run it describes starts again
with the same settings (flags given beside it win). The file is flat: one ``key =
value`` line per setting (``TrainSettings``'s field names); a setting left at ``None``
("not bounded", "the default") is written as the text ``"none"`` (TOML has no null),
read back as ``None`` for the settings that may be ``None``. Reading uses ``tomllib``
(Python 3.11+) or ``tomli`` on 3.10 (the ``toml`` extra); writing needs no library.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.atomic import write_text_atomic
from .settings_fields import declared

SETTINGS_FILE = "settings.toml"
"""The name of the settings file in a run folder."""

NONE = "none"
"""How a setting left at ``None`` is written (TOML has no null)."""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    raise TypeError(f"expected a bool, a number or a text, found {type(value).__name__}")


def to_toml(
    values: Mapping[str, Any],
    record: type | None = None,
    commented: Mapping[str, str] | None = None,
) -> str:
    """TOML text of flat ``values`` (one ``name = value`` line each; ``None`` becomes
    ``"none"``). With ``record`` (a settings dataclass) a comment above each line says
    what the setting is, from its declaration; a name in ``commented`` is written as a
    comment, followed by the reason it maps to."""
    fields = declared(record) if record is not None else {}
    commented = commented or {}
    lines = []
    for name, value in values.items():
        if name in fields:
            lines.append(f"# {fields[name].spec.help}")
        if value is None:
            value = NONE
        if name in commented:
            lines.append(f"# {name} = {_value(value)}  ({commented[name]})")
        else:
            lines.append(f"{name} = {_value(value)}")
    return "\n".join(lines) + "\n"


def settings_toml(settings: Any, commented: Mapping[str, str] | None = None) -> str:
    """TOML of a :class:`~kioku.train.settings.TrainSettings`: the settings its task
    reads (one that only other tasks read is left out, as the command refuses it)."""
    from .settings import TASK_FIELDS

    values = {
        name: value
        for name, value in settings.to_dict().items()
        if name not in TASK_FIELDS or settings.task in TASK_FIELDS[name]
    }
    return to_toml(values, type(settings), commented)


def write_settings(folder: str | os.PathLike, settings: Any) -> Path:
    """``folder``/settings.toml holding ``settings`` (written atomically); its path.
    ``out`` is a comment: the folder holds this run, and ``kioku train --config`` on the
    file starts a new one (in ``--out``, or ``runs/<data>``)."""
    path = Path(folder) / SETTINGS_FILE
    note = {"out": "this run's folder; a run from this file goes to --out"}
    write_text_atomic(path, settings_toml(settings, note))
    return path


def _toml_module():
    try:
        import tomllib

        return tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli

            return tomli
        except ImportError:
            raise ImportError(
                "config: reading TOML on Python 3.10 needs tomli (pip install 'kioku-lstm[toml]')"
            ) from None


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The settings a TOML file gives, by name (unchecked: building the settings checks
    them). A missing file, bad TOML or a table (the file is flat) is a ``ValueError``
    naming ``config`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path}: no such file")
    module = _toml_module()
    try:
        values = module.loads(path.read_text(encoding="utf-8"))
    except (module.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config {path}: not TOML ({error})") from None
    for name, value in values.items():
        if isinstance(value, (dict, list)):
            kind = "table" if isinstance(value, dict) else "list"
            raise ValueError(f"config {path}: key {name!r}: expected a flat value, found a {kind}")
    return values


def settings_values(values: Mapping[str, Any], record: type) -> dict[str, Any]:
    """``values`` read from a file with ``"none"`` back to ``None`` for the settings of
    ``record`` that may be ``None``."""
    fields = declared(record)
    return {
        name: None if value == NONE and name in fields and fields[name].nullable else value
        for name, value in values.items()
    }


__all__ = [
    "NONE",
    "SETTINGS_FILE",
    "read_config",
    "settings_toml",
    "settings_values",
    "to_toml",
    "write_settings",
]
