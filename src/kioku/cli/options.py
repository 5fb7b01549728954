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


def add_text_run(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``CHECKPOINT --text FILE --out ...``: the arguments of a command that runs a model
    trained on text over a text file and writes what it saw (``out_help`` says what
    ``--out`` names)."""
    parser.add_argument("checkpoint", help="a run folder or checkpoint directory of kioku train")
    parser.add_argument(
        "--text", required=True, help="UTF-8 text file to run the model on (required)"
    )
    parser.add_argument("--out", required=True, help=out_help)


def load_text_model(checkpoint: str, which: str) -> tuple:
    """``(model, state, vocab, directory)`` of ``checkpoint`` (see
    :func:`kioku.train.restore.load_model`); ``ValueError`` naming CHECKPOINT when it is
    not a readable checkpoint or its model was not trained on text (it has no vocabulary)."""
    from ..train.checkpoint import CheckpointError
    from ..train.restore import load_model

    try:
        model, state, vocab, directory = load_model(checkpoint, which)
    except (CheckpointError, FileNotFoundError, KeyError) as error:
        raise ValueError(
            f"CHECKPOINT: {checkpoint} is not a readable kioku checkpoint ({error})"
        ) from None
    if vocab is None:
        raise ValueError(
            f"CHECKPOINT: {directory} holds a {type(model).__name__}, which reads number "
            "series, not text; this command runs a model trained on text (a language model, "
            "classifier or tagger) over a text file"
        )
    return model, state, vocab, directory
