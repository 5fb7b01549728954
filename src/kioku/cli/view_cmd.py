"""``kioku view CHECKPOINT --text FILE --out page.html``: one self-contained HTML page to
explore what a trained model's gates and cells do on a text (hover, pick a cell, select a
span), working from ``file://`` with no network."""

from __future__ import annotations

import argparse
import sys

from .options import add_text_run, add_which, load_text_model

HELP = "Write an interactive HTML page of a model's gates and cells on a text."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inspect.view import MAX_VIEW_TOKENS

    add_text_run(parser, "the HTML file to write, e.g. view.html (required)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=1000,
        help=f"tokens traced, 1..{MAX_VIEW_TOKENS} (default: 1000); the page holds about "
        "16 bytes per token, cell, layer and direction",
    )
    parser.add_argument(
        "--window", type=int, default=5, help="steps on each side of a selected span (default: 5)"
    )
    add_which(parser)


def run(args: argparse.Namespace) -> int:
    from ..data.text import read_text
    from ..inspect.view import write_view

    try:
        model, state, vocab, directory = load_text_model(args.checkpoint, args.which)
        labels = state.get("task", {}).get("labels")
        summary = write_view(
            model,
            vocab,
            read_text(args.text),
            args.out,
            max_tokens=args.max_tokens,
            labels=labels,
            title=f"kioku view: {directory.parent.name}/{directory.name}",
            window=args.window,
        )
    except (ValueError, TypeError, OSError) as error:
        print(f"kioku view: error: {error}", file=sys.stderr)
        return 2
    unknown = f"{summary['unknown']} read as <unk>, " if summary["unknown"] else ""
    print(
        f"wrote {summary['path']} ({summary['tokens']} tokens, {unknown}"
        f"{', '.join(summary['groups'])}; {summary['bytes'] / 1e6:.2f} MB)"
    )
    return 0
