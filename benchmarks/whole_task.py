"""What the whole-task reference scripts share: where the data is, timing, the result line.

Each script trains for ``--warmup`` steps (not timed: JIT loading, allocator warm-up),
then times ``--steps`` more and prints one JSON line (``task``, ``library``, ``steps``,
``seconds``, the rate, ``parameters``, ``threads``). ``whole_tasks.py`` runs the kioku
and PyTorch scripts of a task alternately in fresh processes and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def arguments(description: str, steps: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=steps, help=f"timed steps (default {steps})")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument(
        "--data-root",
        default=os.environ.get("KIOKU_BENCH_DATA", str(DATA_ROOT)),
        help="folder holding ptb/ and ud-gum/ (default: ../shared/data from the repository)",
    )
    args = parser.parse_args()
    for flag in ("steps", "warmup"):
        if getattr(args, flag) < (1 if flag == "steps" else 0):
            parser.error(f"--{flag}: expected a positive count, found {getattr(args, flag)}")
    return args


def data_folder(args: argparse.Namespace, name: str, files: tuple[str, ...]) -> Path:
    """``<data-root>/<name>``, or exit 0 with a message when its files are absent."""
    folder = Path(args.data_root) / name
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        print(f"skipped: {folder} lacks {', '.join(missing)} (--data-root to point elsewhere)")
        sys.exit(0)
    return folder


def report(task: str, library: str, steps: int, seconds: float, unit: str, count: int,
           parameters: int, threads: int) -> None:  # fmt: skip
    """Print the human line and the JSON line (the last line of the output)."""
    rate = count / seconds
    print(f"{task} {library}: {steps} steps in {seconds:.2f} s, {rate:,.0f} {unit}/s "
          f"({parameters:,} parameters, {threads} threads)")  # fmt: skip
    line = {"task": task, "library": library, "steps": steps, "seconds": seconds,
            f"{unit}_per_s": rate, "parameters": parameters, "threads": threads}  # fmt: skip
    print(json.dumps(line))


def tag_settings(args: argparse.Namespace, link_dir: str, hidden: int, embed: int):
    """``kioku train --task tag`` settings on UD English-GUM for the word-only tagger of
    issue 9's whole task (one bidirectional layer of the sizes given, no characters, no
    word or other dropout, random batches, Adam 3e-3), its ``dev.conllu`` presented as
    the ``valid`` split kioku's folder layout expects (symlinks in ``link_dir``)."""
    folder = data_folder(args, "ud-gum", ("train.conllu", "dev.conllu", "test.conllu"))
    for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
        os.symlink((folder / f"{name}.conllu").resolve(), Path(link_dir) / f"{split}.conllu")
    flags = ["--task", "tag", "--data", link_dir, "--hidden", str(hidden), "--embed", str(embed)]
    flags += ["--layers", "1", "--char-embed", "0", "--word-dropout", "0", "--dropout", "0"]
    flags += ["--sort-window", "0", "--lr", "3e-3"]
    return train_settings(flags)


def ptb_settings(args: argparse.Namespace):
    """``kioku train --data ptb`` settings (the preset of Zaremba et al.'s "small" model),
    with ``KIOKU_DATA`` pointing at the data root, whose ``ptb/ptb.*.txt`` kioku reads."""
    data_folder(args, "ptb", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))
    os.environ["KIOKU_DATA"] = args.data_root
    return train_settings(["--data", "ptb"])


def train_settings(flags: list[str]):
    """The settings ``kioku train`` resolves from the command-line ``flags``."""
    from kioku.cli import train_cmd

    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    return train_cmd.resolve_settings(parser.parse_args(flags))


def warmed_trainer(args: argparse.Namespace, settings, model, task, parallel=None):
    """kioku's :class:`~kioku.train.loop.Trainer` of ``model`` on ``task`` with the
    optimizer and schedule of ``settings`` (no evaluation, sampling or progress output),
    its ``args.warmup`` steps already run and set to run ``args.steps`` more."""
    from kioku.train.loop import LoopConfig, Trainer
    from kioku.train.setup import build_optimizer, build_schedule

    optimizer = build_optimizer(settings, model)
    config = LoopConfig(
        max_steps=args.warmup,
        epochs=settings.epochs,
        eval_every=0,
        eval_at_epoch_end=False,
        clip=settings.clip,
        progress=False,
    )
    schedule = build_schedule(settings, optimizer)
    trainer = Trainer(model, task, optimizer, schedule, config, parallel=parallel)
    if args.warmup:
        trainer.run()
    config.max_steps = args.warmup + args.steps
    return trainer


def timed_run(trainer) -> float:
    """Seconds that ``trainer.run()`` takes."""
    start = time.perf_counter()
    trainer.run()
    return time.perf_counter() - start
