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
  kioku train --config runs/book/settings.toml --out runs/book2   the same settings again
  kioku train --task classify --data reviews.tsv --print-config > run.toml

Given flags always win over the preset; a stopping flag (--max-steps, --epochs,
--max-time) replaces the preset's stopping rule. A flag that the task does not read
is refused. The run's best checkpoint on validation is what eval, predict, sample,
info, inspect and kioku.load() use.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``kioku train``: one per declared setting of
    :class:`~kioku.train.settings.TrainSettings`, in its group, with its range and its
    default per preset in ``--help`` (a given flag always wins), and ``--resume``."""
    from ..train.settings import TrainSettings, preset_default
    from .setting_flags import add_setting_flags

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    groups = add_setting_flags(parser, TrainSettings, preset_default)
    groups["output"].add_argument(
        "--config",
        metavar="FILE",
        help="read settings from a TOML file (name = value per setting, as every run "
        "folder's settings.toml); flags given beside it win (default: none)",
    )
    groups["output"].add_argument(
        "--print-config",
        action="store_true",
        default=None,
        help="print the run's settings as TOML (what --config reads) and exit (default: train)",
    )
    groups["output"].add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (default: --out) from its latest checkpoint; "
        "only stopping, evaluation and output flags may change",
    )


def resolve_settings(args: argparse.Namespace, saved: dict | None = None) -> TrainSettings:
    """The settings of the flags given: over the resumed run's settings (``saved``), else
    over the preset of the task and data (see :mod:`kioku.train.settings`)."""
    from ..train.settings import resolve

    ignored = {"command", "resume", "config", "print_config"}
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None and not k.startswith("_") and k not in ignored
    }
    if getattr(args, "config", None):
        from ..train.config_file import read_config, settings_values
        from ..train.settings import TrainSettings
        from ..train.settings_fields import check_names

        config = settings_values(read_config(args.config), TrainSettings)
        try:
            check_names(TrainSettings, config, f"--config {args.config}")
        except TypeError as error:
            raise ValueError(str(error)) from None
        given = {**config, **given}  # a flag given beside the file wins
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
    if args.print_config:
        from ..train.config_file import settings_toml
        from ..train.runner import absolute_data

        settings = settings.replace(data=absolute_data(settings.data))
        print(settings_toml(settings), end="", file=out)
        return 0
    if out is sys.stdout and not _fast_kernels_installed():  # rank 0 says it, once
        print(FAST_EXTRA_NOTE, file=sys.stderr, flush=True)
    started = time.perf_counter()
    source = str(directory / "checkpoint.json") if saved_state is not None else None
    summary = train_run(settings, saved_state, out, source)
    wall = time.perf_counter() - started
    if summary.get("diverged"):  # a non-finite number stopped it: exit 3
        print(f"kioku train: {summary['diverged']}", file=sys.stderr, flush=True)
        return 3
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
