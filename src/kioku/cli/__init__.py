"""The ``kioku`` command. Each subcommand lives in its own module of this package and
exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; modules
are imported only when their command runs, so ``kioku --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "train": "Train a model (no argument: a character LSTM on Python's standard library).",
    "eval": "Evaluate a checkpoint on a split of its data or on any file of its task.",
    "predict": "Predict with a trained model: next-token bits, labels, tags or forecasts.",
    "sample": "Generate text from a language-model checkpoint.",
    "info": "Describe a checkpoint: configuration, sizes, training state.",
    "inspect": "Write an HTML report of what a model's gates and cells do on a text.",
    "view": "Write an interactive HTML page of a model's gates and cells on a text.",
    "experiments": "Run the seed's claims as fixed-seed experiments and write a report.",
    "bench": "Benchmark kioku against PyTorch and ONNX Runtime on this machine.",
    "tune": "Measure the kernels' thresholds on this CPU and store them (--show, --reset).",
}

# Commands that run the fast path: on their first run on a machine the kernels' choices
# are measured (seconds) and stored, later runs read them (kioku.kernels._tuning).
TUNED_COMMANDS = frozenset({"train", "eval", "predict", "sample", "experiments", "bench"})


def _command_module(name: str):
    return importlib.import_module(f"kioku.cli.{name}_cmd")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="kioku", description="LSTMs in NumPy.")
    parser.add_argument("--version", action="version", version=f"kioku {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = _command_module(name)
        except ImportError as error:
            if error.name and error.name.startswith("kioku.cli."):
                continue  # command not built yet
            raise
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


# What bad input or a damaged file raises (the documented error types of the library):
# the command answers them with one line and exit status 2, never a traceback.
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (foreign libraries' messages span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status (2: bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        if args.command in TUNED_COMMANDS:
            from ..nn import tuning

            tuning.prepare()
        return int(args._run(args) or 0)
    except USER_ERRORS as error:
        print(f"kioku {args.command}: {one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
