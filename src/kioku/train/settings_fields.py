"""How a setting is declared, once, beside its field: type, range, default, help, group
and the tasks that read it. :class:`~kioku.train.settings.TrainSettings` declares each
of its fields with :func:`declare`; its checks, the command line's flags and groups, and
the settings table of ``docs/training.md`` are all read from these declarations.

The type is the field's annotation (``int``, ``float``, ``str``, ``bool``, each
optionally ``| None``, where ``None`` means "not bounded" or "the default").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NO_VALUE = object()

KEY = "kioku.setting"
"""The key of a field's ``metadata`` that holds its :class:`Setting`."""

GROUPS = ("data", "model", "optimisation", "evaluation", "output")
"""The groups a setting belongs to, in the order ``kioku train --help`` shows them."""

SIZE_MAX = 2**31 - 1
"""The largest count (cells, steps, tokens) a setting may hold: one that fits an index
of 32 bits. Sizes below it are bounded by the machine's memory (see
:func:`kioku.models.size.estimate_bytes`)."""

_KINDS = {"int": int, "float": float, "str": str, "bool": bool}


def setting_error(
    kind: type[Exception], setting: str, detail: str, value: object = _NO_VALUE
) -> Exception:
    """An exception of ``kind`` about the field ``setting`` (and its ``value``, shown when
    given): ``str()`` reads ``"setting value: detail"``; ``setting``, ``shown_value``
    (``None`` when not given) and ``detail`` stay on it as attributes."""
    shown_value = None if value is _NO_VALUE else str(value)
    error = kind(f"{setting if shown_value is None else f'{setting} {shown_value}'}: {detail}")
    error.setting, error.shown_value, error.detail = setting, shown_value, detail
    return error


@dataclass(frozen=True)
class Setting:
    """One setting's declaration (its field's name, type and default are the field's).

    ``minimum``/``maximum`` bound a number (``above``/``below``: the bound itself is
    excluded); ``choices`` lists the values a text may take; ``tasks`` the tasks that
    read it (``None``: all); ``default_text`` replaces the presets' values in the help;
    ``resumable``: a resumed run may change it; ``negatable``: a ``--no-...`` flag too;
    ``sizes``: it sizes the model or a batch (checked against the machine's memory)."""

    help: str
    group: str
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    below: bool = False
    choices: tuple[Any, ...] | None = None
    tasks: tuple[str, ...] | None = None
    default_text: str | None = None
    resumable: bool = False
    negatable: bool = False
    sizes: bool = False

    def __post_init__(self) -> None:
        if self.group not in (*GROUPS, ""):  # "": a flag of a command without groups
            raise ValueError(f"group: expected one of {list(GROUPS)}, found {self.group!r}")


@dataclass(frozen=True)
class Declared:
    """A field with its declaration: ``name``, ``kind`` (int, float, str or bool, from the
    annotation), ``nullable`` (``None`` allowed), ``default`` and ``spec``."""

    name: str
    kind: type
    nullable: bool
    default: Any
    spec: Setting

    @property
    def flag(self) -> str:
        """The command-line flag that sets it: ``batch_size`` -> ``--batch-size``."""
        return "--" + self.name.replace("_", "-")

    def expected(self) -> str:
        """What a value must be, in words: ``an integer >= 1``, ``[0, 1)``, ``one of [...]``."""
        spec = self.spec
        if spec.choices is not None:
            return f"one of {sorted(str(c) for c in spec.choices if c is not None)}"
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "text"
        what = "an integer" if self.kind is int else "a number"
        low, high = spec.minimum, spec.maximum
        if low is not None and high is not None and self.kind is float and high <= 1:
            return f"{'(' if spec.above else '['}{low:g}, {high:g}{')' if spec.below else ']'}"
        parts = []
        if low is not None:
            parts.append(f"{'>' if spec.above else '>='} {_number(low)}")
        if high is not None:
            parts.append(f"{'<' if spec.below else '<='} {_number(high)}")
        return f"{what} {' and '.join(parts)}" if parts else f"{what}, finite"

    def check(self, value: Any) -> None:
        """``ValueError`` (``TypeError`` for a flag that is no bool, a text that is no text)
        naming the field unless ``value`` is of its type, in its range or choices."""
        if value is None and self.nullable:
            return
        spec, expected = self.spec, self.expected()
        if spec.choices is not None:
            if value not in spec.choices:
                raise setting_error(ValueError, self.name, f"expected {expected}, found {value!r}")
            return
        if self.kind is bool or self.kind is str:
            if not isinstance(value, self.kind):
                raise setting_error(TypeError, self.name, f"expected {expected}, found {value!r}")
            return
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind is int and not isinstance(value, int):
            numeric = False
        # ValueError for a wrong type too: a flag's value, however typed, is out of range
        if not numeric or not _within(value, spec):
            if numeric and math.isfinite(value) and not expected.startswith(("[", "(")):
                expected = self._side_missed(value)
            elif numeric and expected.startswith("a number"):  # inf or nan: never in range
                expected = "a finite " + expected[2:]
            raise setting_error(ValueError, self.name, f"expected {expected}, found {value!r}")

    def _side_missed(self, value: float) -> str:
        """The bound a finite ``value`` misses, in words: ``an integer <= 1000``."""
        spec, what = self.spec, "an integer" if self.kind is int else "a number"
        low = spec.minimum
        if low is not None and not (low < value if spec.above else low <= value):
            return f"{what} {'>' if spec.above else '>='} {_number(low)}"
        return f"{what} {'<' if spec.below else '<='} {_number(spec.maximum)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _within(value: float, spec: Setting) -> bool:
    if not math.isfinite(value):
        return False
    low, high = spec.minimum, spec.maximum
    if low is not None and not (low < value if spec.above else low <= value):
        return False
    return high is None or (value < high if spec.below else value <= high)


def declare(default: Any, group: str, help: str, **spec: Any) -> Any:
    """A dataclass field with ``default`` declared as a setting (see :class:`Setting` for
    ``spec``): ``hidden: int = declare(256, "model", "cells per layer", minimum=1)``."""
    return dataclasses.field(default=default, metadata={KEY: Setting(help, group, **spec)})


@functools.cache
def declared(record: type) -> dict[str, Declared]:
    """The declared settings of the dataclass ``record``, by name, in field order (a field
    without a declaration is a ``TypeError``: every field is a setting)."""
    fields = {}
    for field in dataclasses.fields(record):
        if KEY not in field.metadata:
            raise TypeError(f"{record.__name__}.{field.name}: expected a declared setting")
        names = _type_names(field.type)
        kinds = [_KINDS[n] for n in names if n in _KINDS]
        if len(kinds) != 1 or not set(names) <= {*_KINDS, "None"}:
            raise TypeError(
                f"{record.__name__}.{field.name}: expected int, float, str or bool "
                f"(optionally | None), found {field.type}"
            )
        fields[field.name] = Declared(
            field.name, kinds[0], "None" in names, field.default, field.metadata[KEY]
        )
    return fields


def _type_names(annotation: Any) -> list[str]:
    """``"int | None"``, ``int | None`` or ``int`` -> ``["int", "None"]`` or ``["int"]``."""
    if isinstance(annotation, str):
        return annotation.replace(" ", "").split("|")
    members = typing.get_args(annotation) or (annotation,)
    return ["None" if m is type(None) else getattr(m, "__name__", str(m)) for m in members]


def check_all(settings: Any) -> None:
    """Each field of the dataclass instance ``settings`` against its declaration."""
    for name, field in declared(type(settings)).items():
        field.check(getattr(settings, name))


def check_names(record: type, values: Mapping[str, Any], name: str) -> None:
    """``TypeError`` naming ``name`` and the unknown keys of ``values`` (not fields)."""
    unknown = sorted(set(values) - set(declared(record)))
    if unknown:
        raise TypeError(f"{name}: expected fields of {record.__name__}, found unknown {unknown}")


def applies_to(record: type) -> dict[str, tuple[str, ...]]:
    """The settings that only some tasks read, with those tasks."""
    return {n: f.spec.tasks for n, f in declared(record).items() if f.spec.tasks is not None}
