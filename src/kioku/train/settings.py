"""What a training run is asked to do: one typed record, and the presets it starts from.

The command line fills a :class:`TrainSettings` from its flags (a flag ``--batch-size``
is the field ``batch_size``); scripts build one directly. Errors about a setting carry
the field's name in ``error.setting`` so that a front end can name it its own way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.base import CELLS
from ..models.pooling import POOLINGS
from .optim import OPTIMIZERS

_NO_VALUE = object()

# keys that older runs saved beside the settings (argparse's own), not settings
_LEGACY_KEYS = frozenset({"command", "resume"})


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
class TrainSettings:
    """Every choice of a run. ``None`` means "not bounded" for ``max_steps``, ``epochs``
    and ``max_time``, "the data's own" for ``level``, "the task's default" for
    ``min_count`` and ``bidirectional``. The defaults are the character-level language
    model on Python's standard library (:data:`CHAR_LM`)."""

    # what to learn and where to write it
    task: str = "lm"
    data: str = "stdlib"
    level: str | None = None
    out: str | None = None
    # how long
    max_steps: int | None = 2400
    epochs: int | None = None
    max_time: float | None = None
    # the model
    cell: str = "lstm"
    heads: int = 1
    seed: int = 0
    hidden: int = 256
    layers: int = 2
    embed: int = 64
    dropout: float = 0.0
    variational_dropout: bool = False
    init_range: float = 0.0
    tie_weights: bool = False
    bidirectional: bool | None = None
    pooling: str = "last"
    char_embed: int = 0
    char_hidden: int = 50
    embed_dropout: float | None = None
    word_dropout: float = 0.0
    sort_window: int = 0
    # batches
    bptt: int | None = 64
    batch_size: int = 32
    min_count: int | None = None
    max_vocab: int | None = None
    window: int = 32
    horizon: int = 1
    columns: str | None = None
    # the optimizer and its schedule
    optimizer: str = "adam"
    lr: float = 3e-3
    clip: float | None = 1.0
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_decay: float | None = None
    decay_start: int | None = None
    plateau: bool = False
    # evaluation, checkpoints and output
    eval_every: int = 200
    eval_tokens: int | None = 20000
    eval_batch_size: int = 10
    patience: int = 0
    sample_every: int = 400
    keep: int = 2
    no_progress: bool = False

    def __post_init__(self) -> None:
        for name, (kind, low, high, closed_low, closed_high) in _RANGES.items():
            _check_number(name, getattr(self, name), kind, low, high, closed_low, closed_high)
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool) and not (
                name == "bidirectional" and self.bidirectional is None
            ):
                raise setting_error(
                    TypeError, name, f"expected true or false, found {getattr(self, name)!r}"
                )
        for name in _TEXTS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise setting_error(TypeError, name, f"expected text, found {value!r}")
        if self.task == "lm" and self.bptt is None:  # the other tasks take whole sequences
            raise setting_error(
                ValueError, "bptt", "expected an integer >= 1 for task lm, found None"
            )
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                detail = (
                    f"expected one of {sorted(map(str, choices))}, found {getattr(self, name)!r}"
                )
                raise setting_error(ValueError, name, detail)
        if self.heads != 1 and (
            self.cell != "slstm"
            or not isinstance(self.heads, int)
            or self.heads < 1
            or self.hidden % self.heads
        ):
            detail = f"expected 1 or (cell slstm) a divisor of hidden {self.hidden}, found "
            raise setting_error(ValueError, "heads", detail + f"{self.heads} (cell {self.cell})")

    def cell_options(self) -> dict[str, Any]:
        """The model arguments that choose its recurrent cell: ``cell`` and (for the
        sLSTM) ``num_heads``."""
        return {"cell": self.cell, "num_heads": self.heads}

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes``; an unknown name is a ``TypeError`` naming it."""
        _check_names(changes, "changes")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what checkpoints keep under ``meta.settings``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainSettings:
        """Settings from :meth:`to_dict`'s dict (missing fields take their defaults; the
        argparse keys that older checkpoints saved beside them are ignored)."""
        if not isinstance(values, Mapping):
            raise TypeError(f"settings: expected a dict, found {type(values).__name__}")
        values = {k: v for k, v in values.items() if k not in _LEGACY_KEYS}
        _check_names(values, "settings")
        return cls(**values)


_INF = float("inf")
# field: (int or float, low, high, low included, high included); None passes where the
# field's type allows it (it means "not bounded" or "the default")
_RANGES: dict[str, tuple[type, float, float, bool, bool]] = {
    **{
        name: (int, 1, _INF, True, False)
        for name in (
            "hidden", "layers", "embed", "bptt", "batch_size", "window", "horizon",
            "max_vocab", "max_steps", "epochs", "min_count", "eval_tokens", "eval_batch_size",
            "char_hidden",
        )
    },
    **{
        name: (int, 0, _INF, True, False)
        for name in ("seed", "decay_start", "eval_every", "patience", "sample_every", "keep",
                     "char_embed", "sort_window")
    },
    "max_time": (float, 0, _INF, False, False),
    "dropout": (float, 0, 1, True, False),
    "embed_dropout": (float, 0, 1, True, False),
    "word_dropout": (float, 0, _INF, True, False),
    "init_range": (float, 0, _INF, True, False),
    "lr": (float, 0, _INF, False, False),
    "clip": (float, 0, _INF, True, False),
    "momentum": (float, 0, 1, True, False),
    "weight_decay": (float, 0, _INF, True, False),
    "lr_decay": (float, 0, 1, False, True),
}  # fmt: skip
_FLAGS = ("variational_dropout", "tie_weights", "bidirectional", "nesterov", "plateau",
          "no_progress")  # fmt: skip
_TEXTS = ("data", "out", "columns")
_CHOICES = {
    "task": ("lm", "classify", "tag", "forecast"),
    "cell": CELLS,
    "level": (None, "char", "word"),
    "optimizer": tuple(OPTIMIZERS),
    "pooling": POOLINGS,
}
_NULLABLE = frozenset(f.name for f in dataclasses.fields(TrainSettings) if "None" in str(f.type))


def _check_number(
    name: str, value: Any, kind: type, low: float, high: float, closed_low: bool, closed_high: bool
) -> None:
    """Refuse ``value`` for the field ``name`` unless it is a ``kind`` in the range."""
    if value is None and name in _NULLABLE:
        return
    left, right = "[" if closed_low else "(", "]" if closed_high else ")"
    what = "an integer" if kind is int else "a number"
    if low == 0 and high == _INF:
        expected = f"{what} {'>=' if closed_low else '>'} 0"
    elif high == _INF:
        expected = f"{what} >= {low:g}"
    else:
        expected = f"{left}{low:g}, {high:g}{right}"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not isinstance(value, int):
        numeric = False
    if not numeric:  # ValueError too: a flag's value, however typed, is out of its range
        raise setting_error(ValueError, name, f"expected {expected}, found {value!r}")
    if not (
        math.isfinite(value)
        and (low <= value if closed_low else low < value)
        and (value <= high if closed_high else value < high)
    ):
        raise setting_error(ValueError, name, f"expected {expected}, found {value!r}")


def _check_names(values: Mapping[str, Any], name: str) -> None:
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainSettings)})
    if unknown:
        raise TypeError(f"{name}: expected fields of TrainSettings, found unknown {unknown}")


CHAR_LM = TrainSettings()
"""The default run: a 2x256 character LSTM on Python's stdlib, Adam, ~10 minutes."""

# runs counted in epochs, evaluated at each epoch's end on all of valid, no samples
_BY_EPOCH = dict(max_steps=None, eval_every=0, sample_every=0, eval_tokens=None)

PTB_SMALL = TrainSettings(
    data="ptb",
    embed=200,
    hidden=200,
    bptt=20,
    batch_size=20,
    optimizer="sgd",
    # Zaremba et al. 2014 "small": lr 1 and clip 5 on the loss summed over T=20 steps are
    # lr 20 and clip 5/20 on the per-token mean loss used here.
    lr=20.0,
    clip=0.25,
    epochs=13,
    init_range=0.1,
    lr_decay=0.5,
    decay_start=4,
    **_BY_EPOCH,
)
"""Word level, the "small" model of Zaremba et al. (2014), for ``--data ptb``."""

CLASSIFY = TrainSettings(
    task="classify", hidden=64, layers=1, bptt=None, clip=5.0, epochs=10, **_BY_EPOCH
)
"""One label per ``label<TAB>text`` line; the forecast preset differs only in task."""

FORECAST = CLASSIFY.replace(task="forecast")

TAG = CLASSIFY.replace(
    task="tag", embed=100, char_embed=30, char_hidden=50, hidden=100, layers=2, dropout=0.25,
    word_dropout=0.25, lr=1e-3, batch_size=32, epochs=30, patience=3, max_time=840.0,
    sort_window=20,
)  # fmt: skip
"""Word and character BiLSTM tagger (Plank et al. 2016; Lample et al. 2016): word
embeddings 100 joined by a character BiLSTM (30-wide char embeddings, 50 per direction),
2 x 100 per direction, dropout 0.25, word dropout 0.25, Adam 1e-3, batch 32 of similar
lengths (sorted within windows of 20 batches); at most 30 epochs, stopping after 3
evaluations without improvement on valid or after 14 minutes."""

PRESETS: dict[str, TrainSettings] = {
    "char-lm": CHAR_LM,
    "ptb-small": PTB_SMALL,
    "classify": CLASSIFY,
    "tag": TAG,
    "forecast": FORECAST,
}


def preset_for(task: str = "lm", data: str = "stdlib", level: str | None = None) -> TrainSettings:
    """The preset a run of ``task`` on ``data`` at ``level`` starts from. Only the Penn
    Treebank itself takes :data:`PTB_SMALL`: its SGD at learning rate 20 suits that
    corpus, not a user's word-level text, which starts from :data:`CHAR_LM`."""
    if task != "lm":
        return PRESETS.get(task, CLASSIFY)
    return PTB_SMALL if data == "ptb" else CHAR_LM


STOPPING = ("max_steps", "epochs", "max_time")
"""The limits that end a run: a user who gives one replaces the preset's, so that
``--max-steps 200`` is never cut short by a preset's ``epochs``."""

TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "bptt": ("lm",),
    "eval_tokens": ("lm",),
    "eval_batch_size": ("lm",),
    "sample_every": ("lm",),
    "tie_weights": ("lm",),
    "variational_dropout": ("lm",),
    "level": ("lm", "classify"),
    "embed": ("lm", "classify", "tag"),
    "min_count": ("lm", "classify", "tag"),
    "max_vocab": ("lm", "classify", "tag"),
    "bidirectional": ("classify", "tag"),
    "embed_dropout": ("classify", "tag"),
    "char_embed": ("tag",),
    "char_hidden": ("tag",),
    "word_dropout": ("tag",),
    "sort_window": ("tag",),
    "pooling": ("classify",),
    "window": ("forecast",),
    "horizon": ("forecast",),
    "columns": ("forecast",),
}
"""The fields that only some tasks read; given for another task they are refused."""

RESUMABLE = frozenset(
    {"out", "max_time", "eval_every", "eval_tokens", "eval_batch_size", "patience"}
    | {"sample_every", "keep", "no_progress", *STOPPING}
)
"""What a resumed run may change: how long it goes on, how often it evaluates and what it
prints. Everything else made the model, the data or the optimizer's state it resumes."""


def check_applies(given: Mapping[str, Any], task: str) -> None:
    """Refuse a field of ``given`` that ``task`` does not read (``ValueError`` naming it),
    rather than accept it and ignore it."""
    for name, tasks in TASK_FIELDS.items():
        if name in given and task not in tasks:
            detail = f"applies to task {' or '.join(tasks)}, not to task {task}"
            raise setting_error(ValueError, name, detail, given[name])


def _stopping(given: Mapping[str, Any]) -> dict[str, Any]:
    """The stopping limits ``given`` implies: those given, the others unbounded."""
    if not any(name in given for name in STOPPING):
        return {}
    return {name: given.get(name) for name in STOPPING}


def resolve(given: Mapping[str, Any], saved: Mapping[str, Any] | None = None) -> TrainSettings:
    """Settings from the fields a user ``given`` explicitly, over a resumed run's
    ``saved`` settings if there are any, else over the preset of their task and data;
    ``out`` defaults to ``runs/<name of the data>``. A given stopping limit replaces
    the preset's (:data:`STOPPING`); a field the task does not read, or one a resumed
    run cannot change (anything outside :data:`RESUMABLE`) to another value, is a
    ``ValueError`` naming it."""
    if saved is not None:
        base = TrainSettings.from_dict(saved)
        for name, value in given.items():
            if name not in RESUMABLE and getattr(base, name, value) != value:
                detail = (
                    f"a resumed run keeps the {name} it started with "
                    f"({getattr(base, name)!r}); start a new run to change it"
                )
                raise setting_error(ValueError, name, detail, value)
        return base.replace(**{**_stopping(given), **given})
    task = given.get("task", "lm")
    check_applies(given, task)
    data = given.get("data", "stdlib")
    settings = preset_for(task, data, given.get("level"))
    settings = settings.replace(**{"data": data, **_stopping(given), **given})
    if settings.out is None:
        settings = settings.replace(out=str(Path("runs") / (Path(str(data)).stem or "run")))
    return settings
