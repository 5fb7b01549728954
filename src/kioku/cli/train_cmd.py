"""``kioku train``: train a model; with no argument, a character LSTM on Python's stdlib.

Flags left out take the preset of the data: the default corpus (character level,
Adam, about 10 minutes on 2 cores), ``--data ptb`` (word level, the "small" model of
Zaremba et al. 2014), or a user's text file/folder (character level). ``--resume``
continues the run in ``--out`` exactly where its last checkpoint stopped.
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

# fmt: off
SIZE_FLAGS = [
    ("--heads", int, "sLSTM heads, each a block of the recurrence (must divide --hidden)"),
    ("--seed", int, "seed of initialisation, dropout and shuffling (default 0)"),
    ("--hidden", int, "LSTM cells per layer"),
    ("--layers", int, "stacked LSTM layers"),
    ("--embed", int, "embedding size"),
    ("--bptt", int, "steps per truncated-BPTT batch (lm)"),
    ("--batch-size", int, "sequences per batch"),
    ("--lr", float, "learning rate"),
    ("--clip", float, "global gradient-norm clip (0: none)"),
    ("--dropout", float, "dropout on embeddings, between layers and before the output"),
    ("--variational-dropout", bool, "one dropout mask per sequence, reused at every step"),
    ("--init-range", float, "parameters from U(-r, r) (0: the layers' own init)"),
    ("--lr-decay", float, "multiply lr by this each epoch from --decay-start (or on plateau)"),
    ("--decay-start", int, "epochs at full lr before --lr-decay applies"),
    ("--plateau", bool, "decay lr when validation loss stops improving"),
    ("--momentum", float, "SGD momentum"),
    ("--nesterov", bool, "Nesterov momentum"),
    ("--weight-decay", float, "L2 (sgd, adam) or decoupled (adamw) weight decay"),
    ("--tie-weights", bool, "share the embedding with the output layer (needs embed == hidden)"),
    ("--eval-every", int, "evaluate on valid every N steps (0: at epoch ends)"),
    ("--eval-tokens", int, "periodic evaluations use this many valid tokens (final: all)"),
    ("--eval-batch-size", int, "streams when evaluating a language model"),
    ("--patience", int, "stop after N evaluations without improvement (0: never)"),
    ("--sample-every", int, "print a sample every N steps (lm)"),
    ("--keep", int, "checkpoints kept besides the best"),
    ("--min-count", int, "rarer tokens become <unk> (default: 3 chars, 1 word)"),
    ("--max-vocab", int, "vocabulary size cap"),
    ("--bidirectional", bool, "bidirectional LSTM (classify; tag is bidirectional anyway)"),
    ("--window", int, "input steps per forecast window"),
    ("--horizon", int, "steps to forecast"),
]
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``kioku train``; ``None`` defaults are filled from the data's preset."""
    a = parser.add_argument
    a(
        "--data",
        help="stdlib (default), ptb, or a text file / folder (csv for forecast, "
        "label<TAB>text lines for classify, CoNLL-U for tag)",
    )
    a("--task", choices=["lm", "classify", "tag", "forecast"], help="default: lm")
    a("--level", choices=["char", "word"], help="tokens for lm (default: the data's)")
    a("--out", help="run folder for checkpoints and log.jsonl (default: runs/<data>)")
    a(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (default: --out) from its latest checkpoint",
    )
    a("--max-steps", type=int, help="stop after this many optimizer steps in total")
    a("--epochs", type=int, help="stop after this many epochs")
    a("--max-time", type=float, help="stop after this many seconds of this session")
    for flag, kind, text in SIZE_FLAGS:
        if kind is bool:
            a(flag, action="store_const", const=True, help=text)
        else:
            a(flag, type=kind, help=text)
    a("--cell", choices=["lstm", "gru", "slstm"], help="the recurrent cell (default: lstm)")
    a("--optimizer", choices=["sgd", "adam", "adamw"], help="default: adam (ptb: sgd)")
    a("--pooling", choices=["last", "mean", "max"])
    a("--columns", help="comma-separated CSV columns for forecast (default: all)")
    a("--no-progress", action="store_true", help="no progress bar or progress lines")


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
    print(
        f"wall time: {wall:.0f} s ({wall / 60:.1f} min); checkpoint: {summary['checkpoint']}",
        file=out,
    )
    return 0 if math.isfinite(summary.get("test_loss", 0.0)) else 1
