"""``kioku eval``: score a checkpoint on a split of its data, or on any file of its task."""

from __future__ import annotations

import argparse
import sys

from ..data import strict_json
from .options import CHECKPOINT_HELP, add_which

HELP = "Evaluate a checkpoint on a split of its data or on any file of its task."

# figures shown after the loss, in this order, where the task gives them
SHOWN = (
    "bpc",
    "ppl",
    "accuracy",
    "seen_accuracy",
    "unseen_accuracy",
    "majority_accuracy",
    "rmse",
    "rmse_units",
    "naive_rmse_units",
    "seasonal_naive_rmse_units",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", help=CHECKPOINT_HELP)
    a(
        "--split",
        choices=["train", "valid", "test"],
        help="the split of the run's data, or of a --data folder (default: test)",
    )
    add_which(parser)
    a(
        "--data",
        help="score this file whole (a folder: its --split file) with the checkpoint's "
        "vocabulary, labels and scaling; unknown tokens become <unk> (default: the run's data)",
    )
    a("--json", action="store_true", help="print the result as one JSON object (default: text)")


def warn_unknown(share: float | None, command: str, what: str) -> None:
    """One line on standard error when more than half of an input reads as ``<unk>``:
    the figures then say little about the model (another language, tokenization or
    level than training's?)."""
    if share is not None and share > 0.5:
        print(
            f"{command}: warning: {share:.0%} of the tokens of {what} are unknown to the "
            "model (<unk>); is it the kind of text the model was trained on?",
            file=sys.stderr,
        )


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
        print(strict_json.dumps(record, sort_keys=True))  # NaN and inf as null, named
        return 0
    shown = [f"loss {record['loss']:.4f}"]
    shown += [f"{key} {record[key]:.4f}" for key in SHOWN if key in record]
    if "unseen_tokens" in record:
        shown.append(f"unseen_tokens {record['unseen_tokens']}")
    if "unk_share" in record:
        shown.append(f"<unk> {record['unk_share']:.1%} of tokens")
    print(f"{record['split']} ({record['data']}): " + ", ".join(shown))
    warn_unknown(record.get("unk_share"), "kioku eval", record["data"])
    if record.get("per_tag"):
        from ..train.tag_task import confused_table, per_tag_table, seen_unseen_lines

        table = seen_unseen_lines(record) + per_tag_table(record["per_tag"])
        print("\n".join(table + confused_table(record.get("confused", []))))
    print(f"checkpoint: {record['checkpoint']} (step {record['step']})")
    return 0
