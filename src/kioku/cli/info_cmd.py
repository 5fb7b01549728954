"""``kioku info``: what a checkpoint holds, without loading data."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..data import strict_json
from .options import CHECKPOINT_HELP, add_which

HELP = "Describe a checkpoint: configuration, sizes, training state."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", help=CHECKPOINT_HELP)
    add_which(parser)
    a("--json", action="store_true", help="print one JSON object (default: text)")


def run(args: argparse.Namespace) -> int:
    from ..train.checkpoint import CheckpointError
    from ..train.evaluation import describe_checkpoint
    from . import one_line

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info = describe_checkpoint(args.checkpoint, args.which)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"kioku info: {one_line(error)}", file=sys.stderr)
        return 2
    for warning in caught:  # e.g. a log whose last line a kill cut short
        print(f"kioku info: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(strict_json.dumps(info, sort_keys=True, default=str))
        return 0
    print(f"checkpoint:  {info['checkpoint']}")
    print(f"model:       {info['model']} ({info['parameters']:,} parameters)")
    print(f"config:      {json.dumps(info['config'], sort_keys=True)}")
    if info.get("vocabulary"):
        print(f"vocabulary:  {info['vocabulary']}")
    print(f"optimizer:   {info['optimizer']} lr {info['lr']:.6g}")
    print(f"step/epoch:  {info['step']} / {info['epoch']} (data position {info['position']})")
    best = info["best_valid"]
    figure = info.get("best_valid_figure", "loss")
    print(f"best valid:  {'-' if best is None else f'{best:.4f}'} ({figure})")
    print(f"trained for: {info['elapsed']:.0f} s")
    print(f"files:       {', '.join(f'{n} ({b:,} bytes)' for n, b in info['files'].items())}")
    for record in info["log_tail"]:
        print(f"log:         {strict_json.dumps(record, sort_keys=True)}")
    return 0
