"""``kioku eval``: evaluate a checkpoint on a split of its data (or of other data)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Evaluate a checkpoint on a data split."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", help="a run folder (its latest or best checkpoint) or a checkpoint folder")
    a("--split", choices=["train", "valid", "test"], default="test")
    a(
        "--which",
        choices=["latest", "best"],
        default="best",
        help="in a run folder: which checkpoint (default best, else latest)",
    )
    a("--data", help="evaluate on other data (same vocabulary required)")
    a("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..train.checkpoint import CheckpointError
    from ..train.evaluation import evaluate_checkpoint
    from . import one_line

    try:
        record = evaluate_checkpoint(args.checkpoint, args.split, args.which, args.data)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"kioku eval: {one_line(error)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record, sort_keys=True))
        return 0
    print(f"checkpoint: {record['checkpoint']} (step {record['step']})")
    shown = [f"loss {record['loss']:.4f}"]
    for key in ("bpc", "ppl", "accuracy", "rmse"):
        if key in record:
            shown.append(f"{key} {record[key]:.4f}")
    print(f"{record['split']} ({record['data']}): " + ", ".join(shown))
    return 0
