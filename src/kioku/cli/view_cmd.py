"""``kioku view CHECKPOINT --text FILE --out page.html``: one self-contained HTML page to
explore what a trained model's gates and cells do on a text (hover, pick a cell, select a
span), working from ``file://`` with no network. ``--compare FILE`` puts a second text's
sentences beside the first's (the seed's lesson of the bidirectional LSTM); ``--lang ja``
writes the page in Japanese."""

from __future__ import annotations

import argparse
import sys

from .options import add_text_run, add_which, load_text_model

HELP = "Write an interactive HTML page of a model's gates and cells on a text."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inspect.view import MAX_VIEW_TOKENS
    from ..inspect.view_text import LANGS

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
    parser.add_argument(
        "--compare",
        metavar="FILE",
        help="a second text, side by side with --text: line k of FILE against line k of "
        "--text (a tagger: one sentence per line), the difference between the two runs shown "
        "per step, layer and direction (default: none, one text)",
    )
    parser.add_argument(
        "--lang",
        choices=LANGS,
        default="en",
        help="the page's language: every label, legend and note (default: en)",
    )
    add_which(parser)


def run(args: argparse.Namespace) -> int:
    from ..data.text import read_text
    from ..data.vocab import Vocabulary
    from ..inspect.view import write_view

    try:
        model, state, vocab, directory = load_text_model(args.checkpoint, args.which)
        task = state.get("task", {})
        chars = task.get("char_vocab")  # a tagger that reads characters
        summary = write_view(
            model,
            vocab,
            read_text(args.text),
            args.out,
            max_tokens=args.max_tokens,
            labels=task.get("labels"),
            title=f"kioku view: {directory.parent.name}/{directory.name}",
            window=args.window,
            lang=args.lang,
            char_vocab=None if chars is None else Vocabulary.from_dict(chars, str(directory)),
            compare=None if args.compare is None else read_text(args.compare),
        )
    except (ValueError, TypeError, OSError) as error:
        print(f"kioku view: error: {error}", file=sys.stderr)
        return 2
    unknown = f"{summary['unknown']} read as <unk>, " if summary["unknown"] else ""
    sentences = f"{summary['sentences']} sentences, " if getattr(model, "num_tags", None) else ""
    print(
        f"wrote {summary['path']} ({summary['tokens']} tokens, {sentences}{unknown}"
        f"{', '.join(summary['groups'])}; {summary['bytes'] / 1e6:.2f} MB)"
    )
    if summary["char_encoder_left_out"]:
        print("the character encoder is left out: the page shows the word-level layers")
    for k, first in enumerate(summary["first_differences"], 1):
        where = "the same sentence" if first is None else f"first difference at word {first}"
        print(f"compared sentence {k}: {where}")
    return 0
