"""What a training run is asked to do: one typed record, and the presets it starts from.

The command line fills a :class:`TrainSettings` from its flags (a flag ``--batch-size``
is the field ``batch_size``); scripts build one directly. Errors about a setting carry
the field's name in ``error.setting`` so that a front end can name it its own way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.base import CELLS
from ..models.pooling import POOLINGS
from .fits import check_fits
from .optim import OPTIMIZERS
from .settings_fields import KEY, SIZE_MAX, applies_to, check_all, check_names, declare, declared
from .settings_fields import setting_error as setting_error

# keys that older runs saved beside the settings (argparse's own), not settings
_LEGACY_KEYS = frozenset({"command", "resume"})

TASK_NAMES = ("lm", "classify", "tag", "forecast")
_WORDS = ("lm", "classify", "tag")  # the tasks that read tokens
SERIES_MAX = 100_000
"""The longest forecast window or horizon: ``kioku train --task forecast`` looks for
a length of data that gives every split one window, in steps of one row."""


@dataclass(frozen=True)
class TrainSettings:
    """Every choice of a run, each field declared once (type, range, default, help and the
    tasks that read it; see :mod:`kioku.train.settings_fields`). ``None`` means "not
    bounded" for ``max_steps``, ``epochs`` and ``max_time``, "the data's own" for
    ``level``, "the task's default" for ``min_count`` and ``bidirectional``. The defaults
    are the character-level language model on Python's standard library (:data:`CHAR_LM`)."""

    # fmt: off
    # what to learn and from which data
    data: str = declare(
        "stdlib", "data", "stdlib, ptb, or a file / folder (train, valid or dev, test): text "
        "for lm, label<TAB>text lines for classify, CoNLL-U for tag, CSV for forecast",
        default_text="stdlib")
    task: str = declare("lm", "data", "what to learn", choices=TASK_NAMES, default_text="lm")
    level: str | None = declare(
        None, "data", "tokens for lm and classify", choices=("char", "word"), tasks=_WORDS[:2],
        default_text="the data's")
    min_count: int | None = declare(
        None, "data", "rarer tokens become <unk>", minimum=1, maximum=SIZE_MAX, tasks=_WORDS,
        default_text="char 3, word 1")
    max_vocab: int | None = declare(
        None, "data", "vocabulary size cap, <unk> and <eos> included",
        minimum=3, maximum=SIZE_MAX, tasks=_WORDS, default_text="none")
    tokenizer: str | None = declare(
        None, "data", "how word-level text is split into words: ud (punctuation apart, "
        "contractions as UD English) or whitespace", choices=("ud", "whitespace"),
        tasks=_WORDS, default_text="ud; ptb whitespace")
    header: bool | None = declare(
        None, "data", "the first line of a label<TAB>text or CSV file is a header (--no-header:"
        " it is data)", tasks=("classify", "forecast"), negatable=True,
        default_text="detected")
    one_file_split: str = declare(
        "shuffled", "data", "how one classify or tag file is split 80/10/10: shuffled with "
        "--seed (classify: stratified by label) or positions (every 10th example to valid, "
        "the next to test, as runs before the shuffle)", choices=("shuffled", "positions"),
        tasks=("classify", "tag"))
    columns: str | None = declare(
        None, "data", "comma-separated CSV columns to forecast", tasks=("forecast",),
        default_text="all but a time index")
    targets: str | None = declare(
        None, "data", "comma-separated CSV columns to forecast (--columns by another name)",
        tasks=("forecast",), default_text="--columns")
    inputs: str | None = declare(
        None, "data", "comma-separated CSV columns read as past covariates: in every window, "
        "never forecast", tasks=("forecast",), default_text="none")
    window: int = declare(
        32, "data", "input steps per forecast window", minimum=1, maximum=SERIES_MAX,
        tasks=("forecast",), sizes=True)
    horizon: int = declare(
        1, "data", "steps to forecast", minimum=1, maximum=SERIES_MAX, tasks=("forecast",),
        sizes=True)
    bptt: int | None = declare(
        64, "data", "steps per truncated-BPTT batch", minimum=1, maximum=SIZE_MAX,
        tasks=("lm",), sizes=True)
    batch_size: int = declare(
        32, "data", "sequences per batch", minimum=1, maximum=SIZE_MAX, sizes=True)
    sort_window: int = declare(
        0, "data", "tag: batch sentences of similar lengths, sorted within windows of N "
        "batches (0: random batches)", minimum=0, maximum=SIZE_MAX, tasks=("tag",))
    # the model
    cell: str = declare("lstm", "model", "the recurrent cell", choices=CELLS, default_text="lstm")
    heads: int = declare(
        1, "model", "sLSTM heads, each a block of the recurrence (divides --hidden)",
        minimum=1, maximum=SIZE_MAX, default_text="1", sizes=True)
    hidden: int = declare(
        256, "model", "cells per layer", minimum=1, maximum=SIZE_MAX, sizes=True)
    layers: int = declare(
        2, "model", "stacked recurrent layers", minimum=1, maximum=1000, sizes=True)
    embed: int = declare(
        64, "model", "embedding size", minimum=1, maximum=SIZE_MAX, tasks=_WORDS, sizes=True)
    dropout: float = declare(
        0.0, "model", "dropout on embeddings, between layers and before the output",
        minimum=0, maximum=1, below=True)
    embed_dropout: float | None = declare(
        None, "model", "dropout on the (word and char) embeddings instead", minimum=0,
        maximum=1, below=True, tasks=("classify", "tag"), default_text="--dropout")
    char_embed: int = declare(
        0, "model", "tag: char embedding size; 0: words only, no char BiLSTM", minimum=0,
        maximum=SIZE_MAX, tasks=("tag",), sizes=True)
    char_hidden: int = declare(
        50, "model", "tag: char BiLSTM cells per direction", minimum=1, maximum=SIZE_MAX,
        tasks=("tag",), sizes=True)
    word_dropout: float = declare(
        0.0, "model", "tag: read a training word w as <unk> with probability A/(A+count(w)) "
        "(0: never)", minimum=0, tasks=("tag",))
    variational_dropout: bool = declare(
        False, "model", "one dropout mask per sequence, reused at every step", tasks=("lm",))
    init_range: float = declare(
        0.0, "model", "parameters from U(-r, r) (0: the layers' own init; beyond 1 every "
        "gate saturates)", minimum=0, maximum=1)
    tie_weights: bool = declare(
        False, "model", "share the embedding with the output layer (embed == hidden)",
        tasks=("lm",))
    bidirectional: bool | None = declare(
        None, "model", "bidirectional recurrent layers", tasks=("classify", "tag"),
        default_text="classify off, tag on")
    pooling: str = declare(
        "last", "model", "how a sequence becomes one vector", choices=POOLINGS,
        tasks=("classify",))
    seed: int = declare(0, "model", "seed of initialisation, dropout and shuffling", minimum=0)
    # the optimizer, its schedule, and how long
    optimizer: str = declare("adam", "optimisation", "the optimizer", choices=tuple(OPTIMIZERS))
    lr: float = declare(3e-3, "optimisation", "learning rate", minimum=0, above=True)
    clip: float | None = declare(
        1.0, "optimisation", "global gradient-norm clip (0: none)", minimum=0)
    momentum: float = declare(0.0, "optimisation", "SGD momentum", minimum=0, maximum=1, below=True)
    nesterov: bool = declare(False, "optimisation", "Nesterov momentum")
    weight_decay: float = declare(
        0.0, "optimisation", "L2 (sgd, adam) or decoupled (adamw) weight decay", minimum=0)
    lr_decay: float | None = declare(
        None, "optimisation", "multiply lr by this each epoch from --decay-start (or on "
        "plateau)", minimum=0, maximum=1, above=True)
    decay_start: int | None = declare(
        None, "optimisation", "epochs at full lr before --lr-decay applies", minimum=0,
        maximum=SIZE_MAX)
    plateau: bool = declare(
        False, "optimisation", "decay lr when the validation figure that picks the best "
        "parameters (loss; a tagger's accuracy) stops improving", negatable=True)
    plateau_patience: int = declare(
        0, "optimisation", "with --plateau: evaluations without improvement before each decay",
        minimum=0, maximum=SIZE_MAX)
    max_steps: int | None = declare(
        2400, "optimisation", "stop after this many optimizer steps in total", minimum=1,
        maximum=SIZE_MAX, resumable=True)
    epochs: int | None = declare(
        None, "optimisation", "stop after this many epochs", minimum=1, maximum=SIZE_MAX,
        resumable=True)
    max_time: float | None = declare(
        None, "optimisation", "stop after this many seconds of this session", minimum=0,
        above=True, resumable=True)
    # evaluation
    eval_every: int = declare(
        200, "evaluation", "evaluate on valid every N steps (0: at epoch ends)", minimum=0,
        maximum=SIZE_MAX, resumable=True)
    eval_tokens: int | None = declare(
        20000, "evaluation", "periodic evaluations use this many valid tokens (final: all)",
        minimum=1, maximum=SIZE_MAX, tasks=("lm",), resumable=True)
    eval_batch_size: int = declare(
        10, "evaluation", "streams when evaluating a language model", minimum=1,
        maximum=SIZE_MAX, tasks=("lm",), resumable=True)
    patience: int = declare(
        0, "evaluation", "stop after N evaluations without improvement (0: never)", minimum=0,
        maximum=SIZE_MAX, resumable=True)
    # checkpoints and output
    out: str | None = declare(
        None, "output", "run folder for checkpoints and log.jsonl", default_text="runs/<data>",
        resumable=True)
    keep: int = declare(
        2, "output", "checkpoints kept besides the best", minimum=0, maximum=SIZE_MAX,
        resumable=True)
    sample_every: int = declare(
        400, "output", "print a sample every N steps (0: never)", minimum=0, maximum=SIZE_MAX,
        tasks=("lm",), resumable=True)
    no_progress: bool = declare(
        False, "output", "no progress bar or progress lines", resumable=True)
    csv_log: str | None = declare(
        None, "output", "write each validation's figures as a CSV row to this file (relative:"
        " in the run folder)", default_text="none", resumable=True)
    tensorboard: str | None = declare(
        None, "output", "write TensorBoard event files to this folder (needs tensorboardX: "
        "the tensorboard extra)", default_text="none", resumable=True)
    # fmt: on

    def __post_init__(self) -> None:
        if self.heads != 1 and (
            self.cell != "slstm"
            or not isinstance(self.heads, int)
            or self.heads < 1
            or not isinstance(self.hidden, int)
            or self.hidden % self.heads
        ):
            detail = f"expected 1 or (cell slstm) a divisor of hidden {self.hidden}, found "
            raise setting_error(ValueError, "heads", detail + f"{self.heads} (cell {self.cell})")
        check_all(self)
        if self.task == "lm" and self.bptt is None:  # the other tasks take whole sequences
            raise setting_error(
                ValueError, "bptt", "expected an integer >= 1 for task lm, found None"
            )

    def cell_options(self) -> dict[str, Any]:
        """The model arguments that choose its recurrent cell: ``cell`` and (for the
        sLSTM) ``num_heads``."""
        return {"cell": self.cell, "num_heads": self.heads}

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes``; an unknown name is a ``TypeError`` naming it."""
        check_names(type(self), changes, "changes")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what checkpoints keep under ``meta.settings``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainSettings:
        """Settings from :meth:`to_dict`'s dict (missing fields take their defaults; the
        argparse keys that older checkpoints saved beside them are ignored). A dict saved
        before ``tokenizer`` existed reads data as it did then: words split on whitespace,
        no header detected (a forecast's CSV always had one), one file split by
        positions."""
        if not isinstance(values, Mapping):
            raise TypeError(f"settings: expected a dict, found {type(values).__name__}")
        values = {k: v for k, v in values.items() if k not in _LEGACY_KEYS}
        if "tokenizer" not in values:
            forecast = values.get("task") == "forecast"
            values.update(tokenizer="whitespace", header=forecast, one_file_split="positions")
        check_names(cls, values, "settings")
        return cls(**values)


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
    task="tag", embed=100, char_embed=50, char_hidden=100, hidden=128, layers=2, dropout=0.25,
    word_dropout=0.25, lr=1e-3, batch_size=32, epochs=100, plateau=True, plateau_patience=2,
    patience=8, max_time=840.0, sort_window=20,
)  # fmt: skip
"""Word and character BiLSTM tagger (Plank et al. 2016; Lample et al. 2016): word
embeddings 100 joined by a character BiLSTM (50-wide char embeddings, 100 per direction),
2 x 128 per direction, dropout 0.25, word dropout 0.25, Adam 1e-3, batch 32 of similar
lengths (sorted within windows of 20 batches). It uses its budget: the rate halves after
3 evaluations in a row without a better dev accuracy (``plateau``), and the run stops
after 8 without one (so at least two halvings first), after 14 minutes, or after 100
epochs; the parameters best on dev are kept. Chosen by measurement on UD English-GUM
(docs/training.md): patience 3 at a constant rate stopped at epoch 25 while dev accuracy
was still rising."""

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


def preset_default(name: str) -> str:
    """The default of the field ``name`` as the presets give it: one value, or each
    preset's (only the presets of tasks that read it), as ``--help`` shows it."""
    tasks = TrainSettings.__dataclass_fields__[name].metadata[KEY].tasks
    values: dict[str, list[str]] = {}
    for preset, settings in PRESETS.items():
        if tasks is not None and settings.task not in tasks:
            continue
        value = getattr(settings, name)
        shown = "none" if value is None else {False: "off", True: "on"}.get(value, str(value))
        if not isinstance(value, bool) and value is not None:
            shown = str(value)
        values.setdefault(shown, []).append(preset)
    if len(values) == 1:
        return next(iter(values))
    return ", ".join(f"{'/'.join(presets)} {value}" for value, presets in values.items())


STOPPING = ("max_steps", "epochs", "max_time")
"""The limits that end a run: a user who gives one replaces the preset's, so that
``--max-steps 200`` is never cut short by a preset's ``epochs``."""

TASK_FIELDS: dict[str, tuple[str, ...]] = applies_to(TrainSettings)
"""The fields that only some tasks read (their declarations' ``tasks``); given for
another task they are refused."""

RESUMABLE = frozenset(n for n, f in declared(TrainSettings).items() if f.spec.resumable)
"""What a resumed run may change (declared ``resumable``): how long it goes on, how often
it evaluates and what it prints. Everything else made the model, the data or the
optimizer's state it resumes."""


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
    the preset's (:data:`STOPPING`); a field the task does not read, one a resumed
    run cannot change (anything outside :data:`RESUMABLE`) to another value, or a new
    run that would need more memory than the machine has
    (:func:`~kioku.train.fits.check_fits`), is a ``ValueError`` naming it."""
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
    preset = preset_for(task, data, given.get("level"))
    settings = preset.replace(**{"data": data, **_stopping(given), **given})
    level = settings.level or ("word" if task == "classify" or data == "ptb" else "char")
    if given.get("tokenizer") is not None and task != "tag" and level == "char":
        detail = "applies to word-level text, not to characters (--level char)"
        raise setting_error(ValueError, "tokenizer", detail, given["tokenizer"])
    if settings.out is None:
        settings = settings.replace(out=str(Path("runs") / (Path(str(data)).stem or "run")))
    check_fits(settings, preset, given)  # before the data is read: its sizes at their least
    return settings
