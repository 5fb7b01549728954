"""``kioku inspect CHECKPOINT --text FILE --out DIR``: one self-contained HTML report of
what a trained model's gates and cells do on a text."""

from __future__ import annotations

import argparse
import os
import sys

from .options import add_text_run, add_which, load_text_model

HELP = "Write an HTML report of what a model's gates and cells do on a text."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_text_run(parser, "folder for report.html and the figures (required)")
    parser.add_argument(
        "--feature",
        action="append",
        default=None,
        help="built-in feature for cell search (repeatable; default: all for char models): "
        "inside_string, bracket_depth, indentation, line_position, in_comment",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=2000, help="tokens traced (default: 2000)"
    )
    add_which(parser)
    parser.add_argument(
        "--svg", action="store_true", help="also write each figure as SVG (default: PNG only)"
    )


def run(args: argparse.Namespace) -> int:
    from ..data.text import read_text
    from ..inspect.model_report import inspect_model

    if args.max_tokens < 1:  # a negative count would slice tokens off the end instead
        print(
            f"kioku inspect: --max-tokens: expected an integer >= 1, found {args.max_tokens}",
            file=sys.stderr,
        )
        return 2
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"kioku inspect: --out {args.out}: expected a folder, found a file", file=sys.stderr)
        return 2
    try:
        from ..inspect.features import get_feature

        for name in args.feature or []:
            get_feature(name)
        model, _, vocab, directory = load_text_model(args.checkpoint, args.which)
        text = read_text(args.text)
        summary = inspect_model(
            model,
            vocab,
            text,
            args.out,
            args.feature,
            args.max_tokens,
            title=f"kioku inspect: {directory}",
            svg=args.svg,
        )
    except (ValueError, OSError) as error:
        print(f"kioku inspect: error: {error}", file=sys.stderr)
        return 2
    unknown = summary["unknown"]
    read = f" ({unknown} of {summary['tokens']} tokens unseen in training, read as <unk>)"
    print(f"wrote {args.out}/report.html{read if unknown else ''}")
    return 0
