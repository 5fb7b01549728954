"""``kioku train``: train a model; with no argument, a character LSTM on Python's stdlib.

Flags left out take the preset of the task and data: the default corpus (character
level, Adam, about 10 minutes on 2 cores), ``--data ptb`` (word level, the "small" model
of Zaremba et al. 2014), a user's text (the character preset, at ``--level`` if given),
or the classify/tag/forecast preset. A flag given always wins; one that the task does
not read, or that a resumed run cannot change, is refused. ``--resume`` continues the
run in ``--out`` exactly where its last checkpoint stopped.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the training package loads only when the command runs
    from ..train.settings import TrainSettings

HELP = "Train a model (no argument: a character LSTM on Python's standard library)."

EXAMPLES = """examples:
  kioku train                                    character LSTM on Python's stdlib (~10 min)
  kioku train --data ptb                         Zaremba et al.'s small PTB model
  kioku train --data book.txt --level word --hidden 128 --max-steps 2000
  kioku train --task classify --data reviews.tsv --epochs 5
  kioku train --task tag --data UD_English-EWT/   word + char BiLSTM tagger
  kioku train --task tag --data ud-gum/ --char-embed 0 --word-dropout 0   words only
  kioku train --task forecast --data sales.csv --columns units --window 28 --horizon 7
  kioku train --resume runs/book --max-steps 4000  (a resumed run keeps its model and data)

Given flags always win over the preset; a stopping flag (--max-steps, --epochs,
--max-time) replaces the preset's stopping rule. A flag that the task does not read
is refused. The run's best checkpoint on validation is what eval, predict, sample,
info, inspect and kioku.load() use.
"""

# fmt: off
GROUPS = {
    "data": [
        ("--min-count", int, "rarer tokens become <unk>", "char 3, word 1"),
        ("--max-vocab", int, "vocabulary size cap, <unk> and <eos> included", "none"),
        ("--columns", str, "comma-separated CSV columns to forecast", "all but a time index"),
        ("--window", int, "input steps per forecast window", None),
        ("--horizon", int, "steps to forecast", None),
        ("--bptt", int, "steps per truncated-BPTT batch", None),
        ("--batch-size", int, "sequences per batch", None),
        ("--sort-window", int, "tag: batch sentences of similar lengths, sorted within windows "
         "of N batches (0: random batches)", None),
    ],
    "model": [
        ("--cell", ["lstm", "gru", "slstm"], "the recurrent cell", "lstm"),
        ("--heads", int, "sLSTM heads, each a block of the recurrence (divides --hidden)", "1"),
        ("--hidden", int, "cells per layer", None),
        ("--layers", int, "stacked recurrent layers", None),
        ("--embed", int, "embedding size", None),
        ("--dropout", float, "dropout on embeddings, between layers and before the output", None),
        ("--embed-dropout", float, "dropout on the (word and char) embeddings instead",
         "--dropout"),
        ("--char-embed", int, "tag: char embedding size; 0: words only, no char BiLSTM", None),
        ("--char-hidden", int, "tag: char BiLSTM cells per direction", None),
        ("--word-dropout", float, "tag: read a training word w as <unk> with probability "
         "A/(A+count(w)) (0: never)", None),
        ("--variational-dropout", bool, "one dropout mask per sequence, reused at every step",
         None),
        ("--init-range", float, "parameters from U(-r, r) (0: the layers' own init)", None),
        ("--tie-weights", bool, "share the embedding with the output layer (embed == hidden)",
         None),
        ("--bidirectional", bool, "bidirectional recurrent layers", "classify off, tag on"),
        ("--pooling", ["last", "mean", "max"], "how a sequence becomes one vector", None),
        ("--seed", int, "seed of initialisation, dropout and shuffling", None),
    ],
    "optimisation": [
        ("--optimizer", ["sgd", "adam", "adamw"], "the optimizer", None),
        ("--lr", float, "learning rate", None),
        ("--clip", float, "global gradient-norm clip (0: none)", None),
        ("--momentum", float, "SGD momentum", None),
        ("--nesterov", bool, "Nesterov momentum", None),
        ("--weight-decay", float, "L2 (sgd, adam) or decoupled (adamw) weight decay", None),
        ("--lr-decay", float, "multiply lr by this each epoch from --decay-start (or on plateau)",
         None),
        ("--decay-start", int, "epochs at full lr before --lr-decay applies", None),
        ("--plateau", bool, "decay lr when validation loss stops improving", None),
        ("--max-steps", int, "stop after this many optimizer steps in total", None),
        ("--epochs", int, "stop after this many epochs", None),
        ("--max-time", float, "stop after this many seconds of this session", None),
    ],
    "evaluation": [
        ("--eval-every", int, "evaluate on valid every N steps (0: at epoch ends)", None),
        ("--eval-tokens", int, "periodic evaluations use this many valid tokens (final: all)",
         None),
        ("--eval-batch-size", int, "streams when evaluating a language model", None),
        ("--patience", int, "stop after N evaluations without improvement (0: never)", None),
    ],
    "output": [
        ("--keep", int, "checkpoints kept besides the best", None),
        ("--sample-every", int, "print a sample every N steps (0: never)", None),
    ],
}
# fmt: on


def preset_default(flag: str) -> str:
    """The default of ``flag`` as the presets give it: one value, or each preset's
    (only the presets of tasks that read it)."""
    from ..train.settings import PRESETS, TASK_FIELDS

    name = flag[2:].replace("-", "_")
    tasks = TASK_FIELDS.get(name)
    values: dict[str, list[str]] = {}
    for preset, settings in PRESETS.items():
        if tasks is not None and settings.task not in tasks:
            continue
        value = getattr(settings, name)
        shown = (
            "none"
            if value is None
            else "off"
            if value is False
            else "on"
            if value is True
            else str(value)
        )
        values.setdefault(shown, []).append(preset)
    if len(values) == 1:
        return next(iter(values))
    return ", ".join(f"{'/'.join(presets)} {value}" for value, presets in values.items())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``kioku train`` in five groups; defaults come from the preset of the
    task and data (shown per preset in ``--help``), a given flag always wins."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        help="stdlib, ptb, or a file / folder (train, valid or dev, test): text for lm, "
        "label<TAB>text lines for classify, CoNLL-U for tag, CSV for forecast "
        "(default: stdlib)",
    )
    data.add_argument(
        "--task", choices=["lm", "classify", "tag", "forecast"], help="what to learn (default: lm)"
    )
    data.add_argument(
        "--level", choices=["char", "word"], help="tokens for lm and classify (default: the data's)"
    )
    groups = {"data": data}
    for title in ("model", "optimisation", "evaluation", "output"):
        groups[title] = parser.add_argument_group(title)
    output = groups["output"]
    output.add_argument(
        "--out", help="run folder for checkpoints and log.jsonl (default: runs/<data>)"
    )
    output.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (default: --out) from its latest checkpoint; "
        "only stopping, evaluation and output flags may change",
    )
    output.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar or progress lines (default: off)",
    )
    for title, flags in GROUPS.items():
        group = groups[title]
        for flag, kind, text, default in flags:
            help_text = f"{text} (default: {default or preset_default(flag)})"
            if kind is bool:
                group.add_argument(flag, action="store_const", const=True, help=help_text)
            elif isinstance(kind, list):
                group.add_argument(flag, choices=kind, help=help_text)
            else:
                group.add_argument(flag, type=kind, help=help_text)


def resolve_settings(args: argparse.Namespace, saved: dict | None = None) -> TrainSettings:
    """The settings of the flags given: over the resumed run's settings (``saved``), else
    over the preset of the task and data (see :mod:`kioku.train.settings`)."""
    from ..train.settings import resolve

    ignored = {"command", "resume"}
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None and not k.startswith("_") and k not in ignored
    }
    return resolve(given, saved)


def flag_message(error: Exception) -> str:
    """``error``'s message, with the settings field it names as the flag that sets it."""
    setting = getattr(error, "setting", None)
    if setting is None:
        return str(error)
    flag = "--" + setting.replace("_", "-")
    value = getattr(error, "shown_value", None)
    return f"{flag if value is None else f'{flag} {value}'}: {error.detail}"


def run(args: argparse.Namespace) -> int:
    """Build (or resume) a run, train it, report the test figures. Bad data, settings or
    checkpoints print one line naming the file and field (or the flag), and return 2."""
    from ..train.checkpoint import CheckpointError
    from ..train.distributed import communicator

    try:
        return _run(args)
    except (
        CheckpointError,
        OSError,
        RuntimeError,
        ValueError,
        TypeError,
        ImportError,
    ) as error:
        comm = communicator()
        prefix = f"kioku train (rank {comm.rank})" if comm.size > 1 else "kioku train"
        print(f"{prefix}: {' '.join(flag_message(error).split())}", file=sys.stderr, flush=True)
        if comm.size > 1:  # the other ranks may wait in a collective: end them all
            comm.abort(2)
        return 2


FAST_EXTRA_NOTE = (
    "kioku train: Numba is not installed, so the NumPy reference kernels run; "
    "pip install 'kioku-lstm[fast]' makes training faster"
)


def _fast_kernels_installed() -> bool:
    """Whether Numba, which the compiled kernels need (the ``fast`` extra), imports."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _run(args: argparse.Namespace) -> int:
    from ..train.distributed import DataParallel, quiet_unless_root
    from ..train.runner import train_run

    out = quiet_unless_root(DataParallel(), sys.stdout)  # rank 0 alone reports
    resume = args.resume
    settings, saved_state, directory = None, None, None
    if resume:
        from ..train.checkpoint import load_checkpoint
        from ..train.restore import saved_settings

        folder = (
            Path(args.out if resume is True else resume)
            if (resume is not True or args.out)
            else None
        )
        if folder is None:
            print(
                "kioku train: --resume needs a run folder (--resume DIR or --out DIR)",
                file=sys.stderr,
            )
            return 2
        saved_state, directory = load_checkpoint(folder)
        saved_settings(saved_state, str(directory / "checkpoint.json"))  # names the key
        saved = dict(saved_state.get("meta", {}).get("settings", {}))
        saved["out"] = str(folder)
        settings = resolve_settings(args, saved)
        print(f"resuming {directory} at step {saved_state['step']}", file=out)
    else:
        settings = resolve_settings(args)
    if out is sys.stdout and not _fast_kernels_installed():  # rank 0 says it, once
        print(FAST_EXTRA_NOTE, file=sys.stderr, flush=True)
    started = time.perf_counter()
    source = str(directory / "checkpoint.json") if saved_state is not None else None
    summary = train_run(settings, saved_state, out, source)
    wall = time.perf_counter() - started
    if summary["interrupted"]:
        print(f"stopped; resume with: kioku train --resume {settings.out}", file=out)
        print(f"checkpoint: {summary['checkpoint']}", file=out)
        return 130
    for line in summary["report"]:
        print(line, file=out)
    if "parallel" in summary:
        p, steps = summary["parallel"], max(len(summary["losses"]), 1)
        share = p["allreduce_s"] / max(summary["elapsed"], 1e-9)
        print(
            f"data parallel: {p['ranks']} ranks, allreduce {p['allreduce_ms_per_step']:.2f} ms "
            f"per step over {steps} steps ({100 * share:.1f}% of the run's time)",
            file=out,
        )
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min)", file=out)
    print(
        f"checkpoint: {summary['tested_checkpoint']} (the one eval, predict, sample, info, "
        "inspect and kioku.load use)",
        file=out,
    )
    return 0 if math.isfinite(summary.get("test_loss", 0.0)) else 1
