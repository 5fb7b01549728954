"""Options that several commands share, with one wording and one default."""

from __future__ import annotations

import argparse


def add_which(parser: argparse.ArgumentParser) -> None:
    """``--which``: the checkpoint of a run folder a command reads (default ``best``)."""
    parser.add_argument(
        "--which",
        choices=("best", "latest"),
        default="best",
        help="in a run folder: the checkpoint best on validation, or the latest "
        "(default: best; a run with no validation yet: its latest)",
    )


CHECKPOINT_HELP = "a run folder of kioku train, or one of its checkpoint folders"
