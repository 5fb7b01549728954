"""``kioku predict RUN [INPUT]``: a trained model's predictions for new input.

- language model: each token's bits (``-log2 p`` given the text before it) and the
  text's perplexity;
- classify: one label and its probability per input line;
- tag: the input's CoNLL-U with UPOS filled in, or ``word<TAB>tag`` lines for plain
  text (one sentence per line);
- forecast: the next ``--horizon`` values after a CSV with the model's columns, in the
  data's own units.

Input is a file or standard input (``-``, the default); output goes to standard output
or ``--out``. A line on standard error names the checkpoint and the throughput.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time

from ..data import strict_json
from ..train.settings_fields import SIZE_MAX
from .options import CHECKPOINT_HELP, add_which
from .setting_flags import add_bounded, bounds_problem

HELP = "Predict with a trained model: next-token bits, labels, tags or forecasts."

HORIZON_MAX = 100_000
"""The most steps one forecast predicts (a step beyond the model's own horizon runs the
model once more over its window), as for ``kioku train --horizon``."""

FORMATS = {
    "lm": ("tsv", "jsonl"),
    "classify": ("tsv", "jsonl"),
    "tag": ("conllu", "tsv", "jsonl"),
    "forecast": ("csv", "jsonl"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = """examples:
  echo "a fine film" | kioku predict runs/reviews          label<TAB>probability
  kioku predict runs/ewt test.conllu --out tagged.conllu    UPOS filled in
  kioku predict runs/sales sales.csv --horizon 14           next 14 rows, data units
  kioku predict runs/stdlib mycode.py --format jsonl        bits per character
"""
    a = parser.add_argument
    a("checkpoint", help=CHECKPOINT_HELP)
    a("input", nargs="?", default="-", help="input file, or - for standard input (default: -)")
    a("--out", help="write here, atomically (default: standard output)")
    a(
        "--format",
        choices=sorted({f for formats in FORMATS.values() for f in formats}),
        help="lm and classify: tsv or jsonl (default tsv); tag: conllu (default for "
        "CoNLL-U input), tsv (default for plain text) or jsonl; forecast: csv (default) "
        "or jsonl",
    )
    add_bounded(
        parser,
        "--horizon",
        int,
        None,
        "forecast: steps to predict; beyond the model's own, forecasts are fed back in",
        default_text="the model's horizon",
        minimum=1,
        maximum=HORIZON_MAX,
    )
    add_bounded(parser, "--batch-size", int, 64, "inputs run together", minimum=1, maximum=SIZE_MAX)
    add_which(parser)


def run(args: argparse.Namespace) -> int:
    from ..api import load
    from ..train.checkpoint import CheckpointError

    problem = bounds_problem(args)
    if problem:  # before loading anything
        print(f"kioku predict: {problem}", file=sys.stderr)
        return 2
    try:
        predictor = load(args.checkpoint, args.which)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"kioku predict: {error}", file=sys.stderr)
        return 2
    kind = predictor.kind
    fmt = args.format
    if fmt is not None and fmt not in FORMATS[kind]:
        print(
            f"kioku predict: --format {fmt}: a {kind} model writes {' or '.join(FORMATS[kind])}",
            file=sys.stderr,
        )
        return 2
    if args.horizon is not None and kind != "forecast":
        print(f"kioku predict: --horizon: applies to forecast, not to {kind}", file=sys.stderr)
        return 2
    try:
        text = _read_input(args.input)
        args.input = _input_name(args.input)  # the messages below: "standard input" for -
        started = time.perf_counter()
        output, count, unit = WRITERS[kind](predictor, text, fmt, args)
        seconds = time.perf_counter() - started
    except (ValueError, TypeError, OSError, MemoryError) as error:
        print(f"kioku predict: {error}", file=sys.stderr)
        return 2
    if args.out:
        from ..data.atomic import write_text_atomic

        write_text_atomic(args.out, output)
    else:
        sys.stdout.write(output)
    rate = count / seconds if seconds > 0 else float("inf")
    print(
        f"kioku predict: {count} {unit} in {seconds:.2f} s ({rate:,.0f}/s); "
        f"checkpoint {predictor.checkpoint} (step {predictor.step})",
        file=sys.stderr,
    )
    return 0


def _input_name(name: str) -> str:
    from ..data.inputs import input_name

    return input_name(name)


def _read_input(name: str) -> str:
    """A file's text, or standard input's for ``-``, with the same checks
    (:func:`kioku.data.inputs.read_input`)."""
    from ..data.inputs import read_input

    return read_input(name)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _shown(token: str) -> str:
    """A token on one TSV cell: newline and tab written as escapes."""
    return token.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def write_lm(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str]:
    """The whole input as one text: ``token<TAB>bits`` lines and a closing comment line
    with the perplexity, or one JSON object."""
    scores = predictor.score(text, args.batch_size)
    if fmt == "jsonl":
        record = {
            "tokens": scores.tokens,
            "bits": [round(float(b), 4) for b in scores.bits],
            "bits_per_token": scores.bits_per_token,
            "perplexity": scores.perplexity,
        }
        return strict_json.dumps(record) + "\n", len(scores.tokens), "tokens"
    out = io.StringIO()
    out.write("token\tbits\n")
    for token, bits in zip(scores.tokens, scores.bits):
        out.write(f"{_shown(token)}\t{bits:.4f}\n")
    out.write(
        f"# perplexity {scores.perplexity:.4f} over {len(scores.tokens)} tokens "
        f"({scores.bits_per_token:.4f} bits per token)\n"
    )
    return out.getvalue(), len(scores.tokens), "tokens"


def write_classify(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str]:
    """One ``label<TAB>probability`` line (or JSON object) per non-blank input line."""
    lines = _lines(text)
    if not lines:
        raise ValueError(f"{args.input}: no text to classify (expected one text per line)")
    probs = predictor.predict_proba(lines, args.batch_size)
    out = io.StringIO()
    for line, row in zip(lines, probs):
        best = int(row.argmax())
        label, p = predictor.labels[best], float(row[best])
        if fmt == "jsonl":
            out.write(strict_json.dumps({"text": line, "label": label, "probability": p}) + "\n")
        else:
            out.write(f"{label}\t{p:.4f}\n")
    return out.getvalue(), len(lines), "lines"


def _is_conllu(text: str) -> bool:
    from ..data.inputs import looks_like_conllu

    return looks_like_conllu(text)


def write_tag(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str]:
    """CoNLL-U in: the same lines with the UPOS column (the 4th) filled in. Plain text
    in: one sentence per line, written as ``word<TAB>tag`` lines with a blank line after
    each sentence (or one JSON object per sentence)."""
    conllu = _is_conllu(text)
    fmt = fmt or ("conllu" if conllu else "tsv")
    if fmt == "conllu" and not conllu:
        raise ValueError(f"{args.input}: --format conllu needs CoNLL-U input")
    if conllu:
        sentences, rows = _conllu_sentences(text, args.input)
    else:
        sentences, rows = [line.split() for line in _lines(text)], None
    if not sentences:
        raise ValueError(f"{args.input}: no sentence to tag")
    tags = predictor.tag(sentences, args.batch_size)
    words = sum(len(s) for s in sentences)
    out = io.StringIO()
    if fmt == "conllu":
        lines = text.splitlines()
        for line_index, tag in zip(rows, (t for ts in tags for t in ts)):
            cells = lines[line_index].split("\t")
            cells[3] = tag
            lines[line_index] = "\t".join(cells)
        out.write("\n".join(lines) + "\n")
    elif fmt == "jsonl":
        for sentence, sentence_tags in zip(sentences, tags):
            out.write(json.dumps({"words": sentence, "tags": sentence_tags}) + "\n")
    else:
        for sentence, sentence_tags in zip(sentences, tags):
            out.writelines(f"{w}\t{t}\n" for w, t in zip(sentence, sentence_tags))
            out.write("\n")
    return out.getvalue(), words, "words"


def _conllu_sentences(text: str, name: str) -> tuple[list[list[str]], list[int]]:
    """The words of each sentence of CoNLL-U ``text`` read from ``name`` and the line
    index of each word (:func:`kioku.data.inputs.conllu_sentences`)."""
    from ..data.inputs import conllu_sentences, input_name

    return conllu_sentences(text, input_name(name))


def write_forecast(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str]:
    """The next ``--horizon`` rows after a CSV holding the model's columns."""
    import csv

    import numpy as np

    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"{args.input}: expected a CSV header and at least one row")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in predictor.columns if c not in header]
    if missing:
        raise ValueError(f"{args.input}: line 1: columns {missing} not in header {header}")
    picks = [header.index(c) for c in predictor.columns]
    values = []
    for line, row in enumerate(rows[1:], 2):
        try:
            values.append([float(row[j]) for j in picks])
        except (ValueError, IndexError):
            raise ValueError(
                f"{args.input}: line {line}: expected numbers in columns {predictor.columns}"
            ) from None
    forecast = predictor.forecast(np.array(values), args.horizon, args.batch_size)
    out = io.StringIO()
    if fmt == "jsonl":
        for step, row in enumerate(forecast, 1):
            record = {"step": step, **{c: float(v) for c, v in zip(predictor.columns, row)}}
            out.write(strict_json.dumps(record) + "\n")
    else:
        out.write(",".join(["step", *predictor.columns]) + "\n")
        for step, row in enumerate(forecast, 1):
            out.write(",".join([str(step), *(f"{v:.6g}" for v in row)]) + "\n")
    return out.getvalue(), len(forecast), "steps"


WRITERS = {
    "lm": write_lm,
    "classify": write_classify,
    "tag": write_tag,
    "forecast": write_forecast,
}
