"""``kioku predict RUN [INPUT]``: a trained model's predictions for new input.

- language model: each token's bits (``-log2 p`` given the text before it) and the
  text's perplexity;
- classify: one label and its probability per input line;
- tag: the input's CoNLL-U with UPOS filled in, or ``word<TAB>tag`` lines for plain
  text (one sentence per line);
- forecast: the next ``--horizon`` values after a CSV with the model's columns, in the
  data's own units, each row labelled by its time: the dates after the CSV's date column
  at the frequency its dates keep, the counts after a column counting rows, else steps
  1..N; ``--plot FILE`` draws the history, the forecast and its interval.

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
    "regress": ("csv",),
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
    a(
        "--plot",
        metavar="FILE",
        help="forecast: draw the input's last rows, the forecast and a 90%% interval "
        "(from the model's errors on the input's windows) to FILE (.png, .svg, .pdf; "
        "needs matplotlib, the plot extra) (default: none)",
    )
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
    for flag, value in (("--horizon", args.horizon), ("--plot", args.plot)):
        if value is not None and kind != "forecast":
            print(f"kioku predict: {flag}: applies to forecast, not to {kind}", file=sys.stderr)
            return 2
    try:
        text = _read_input(args.input)
        args.input = _input_name(args.input)  # the messages below: "standard input" for -
        started = time.perf_counter()
        output, count, unit, said = WRITERS[kind](predictor, text, fmt, args)
        seconds = time.perf_counter() - started
    except (ValueError, TypeError, OSError, MemoryError, ImportError) as error:
        print(f"kioku predict: {error}", file=sys.stderr)
        return 2
    if args.out:
        from ..data.atomic import write_text_atomic

        write_text_atomic(args.out, output)
    else:
        sys.stdout.write(output)
    rate = count / seconds if seconds > 0 else float("inf")
    notes = "".join(f"; {note}" for note in said.get("notes", []))
    if "unk_share" in said:
        notes += f"; <unk> {said['unk_share']:.1%} of tokens"
    print(
        f"kioku predict: {count} {unit} in {seconds:.2f} s ({rate:,.0f}/s){notes}; "
        f"checkpoint {predictor.checkpoint} (step {predictor.step})",
        file=sys.stderr,
    )
    from .eval_cmd import warn_unknown

    warn_unknown(said.get("unk_share"), "kioku predict", "the input")
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


def _unknown(tokens: list, known) -> dict:
    """``{"unk_share": ...}`` of ``tokens``, those not ``known`` reading as ``<unk>``."""
    unknown = sum(1 for token in tokens if not known(token))
    return {"unk_share": unknown / len(tokens)} if tokens else {}


def write_lm(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str, dict]:
    """The whole input as one text: ``token<TAB>bits`` lines and a closing comment line
    with the perplexity, or one JSON object. Tokens are read as ``kioku eval --data``
    reads a file (one stream, a word model's text after an ``<eos>``): the same bits."""
    scores = predictor.score(text, args.batch_size)
    said = _unknown(scores.tokens, lambda token: token != "<unk>")
    if fmt == "jsonl":
        record = {
            "tokens": scores.tokens,
            "bits": [round(float(b), 4) for b in scores.bits],
            "bits_per_token": scores.bits_per_token,
            "perplexity": scores.perplexity,
        }
        return strict_json.dumps(record) + "\n", len(scores.tokens), "tokens", said
    out = io.StringIO()
    out.write("token\tbits\n")
    for token, bits in zip(scores.tokens, scores.bits):
        out.write(f"{_shown(token)}\t{bits:.4f}\n")
    out.write(
        f"# perplexity {scores.perplexity:.4f} over {len(scores.tokens)} tokens "
        f"({scores.bits_per_token:.4f} bits per token)\n"
    )
    return out.getvalue(), len(scores.tokens), "tokens", said


def labelled_lines(lines: list[str], labels: list[str]) -> tuple[list[str], list[str] | None]:
    """The texts of ``lines`` and their gold labels when the input is ``label<TAB>text``
    lines (every line has a tab, and most of what comes before it is one of the model's
    ``labels``; a header line such as ``label<TAB>text`` left out), else ``lines`` and
    ``None``."""
    from ..data.labeled import looks_like_header

    parts = [line.partition("\t") for line in lines]
    if not parts or not all(sep and text.strip() for _, sep, text in parts):
        return lines, None
    pairs = [(label.strip(), text) for label, _, text in parts]
    if pairs[0][0] not in labels and looks_like_header(pairs):
        pairs = pairs[1:]
    if sum(label in labels for label, _ in pairs) * 2 <= len(pairs):
        return lines, None
    return [text for _, text in pairs], [label for label, _ in pairs]


def write_classify(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str, dict]:
    """One ``label<TAB>probability`` line (or JSON object) per non-blank input line. On
    labelled input (``label<TAB>text`` lines, as training reads) the label is kept apart
    from the text, and the accuracy is reported."""
    lines, gold = labelled_lines(_lines(text), predictor.labels)
    if not lines:
        raise ValueError(f"{args.input}: no text to classify (expected one text per line)")
    probs = predictor.predict_proba(lines, args.batch_size)
    tokens = [token for line in lines for token in predictor.vocab.tokenize(line)]
    said = _unknown([t for t in tokens if t != "<eos>"], predictor.vocab.index.__contains__)
    out = io.StringIO()
    hits = 0
    for i, (line, row) in enumerate(zip(lines, probs)):
        best = int(row.argmax())
        label, p = predictor.labels[best], float(row[best])
        record = {"text": line, "label": label, "probability": p}
        if gold is not None:
            record["gold"] = gold[i]
            hits += gold[i] == label
        if fmt == "jsonl":
            out.write(strict_json.dumps(record) + "\n")
        else:
            out.write(f"{label}\t{p:.4f}\n")
    if gold is not None:
        said["notes"] = [
            f"accuracy {hits / len(lines):.4f} over {len(lines)} labelled lines "
            "(label<TAB>text: each label kept apart from its text)"
        ]
    return out.getvalue(), len(lines), "lines", said


def _is_conllu(text: str) -> bool:
    from ..data.inputs import looks_like_conllu

    return looks_like_conllu(text)


def write_tag(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str, dict]:
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
        # plain text: split into words as training's vocabulary says (eat. -> eat .)
        sentences, rows = [predictor.vocab.words(line) for line in _lines(text)], None
    if not sentences:
        raise ValueError(f"{args.input}: no sentence to tag")
    tags = predictor.tag(sentences, args.batch_size)
    words = sum(len(s) for s in sentences)
    said = _unknown([w for s in sentences for w in s], predictor.vocab.index.__contains__)
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
    return out.getvalue(), words, "words", said


def _conllu_sentences(text: str, name: str) -> tuple[list[list[str]], list[int]]:
    """The words of each sentence of CoNLL-U ``text`` read from ``name`` and the line
    index of each word (:func:`kioku.data.inputs.conllu_sentences`)."""
    from ..data.inputs import conllu_sentences, input_name

    return conllu_sentences(text, input_name(name))


def write_forecast(predictor, text: str, fmt: str | None, args) -> tuple[str, int, str, dict]:
    """The next ``--horizon`` rows after a CSV holding the model's columns (a CSV without
    a header row holds ``column1``, ``column2``, ... as a model trained on one names
    them)."""
    import csv

    import numpy as np

    from ..data.timeseries import has_header

    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    headed = has_header(rows)
    if len(rows) < 1 + headed:
        raise ValueError(f"{args.input}: expected a CSV header and at least one row")
    if headed:
        header = [h.strip() for h in rows[0]]
    else:
        header = [f"column{j + 1}" for j in range(max(len(r) for r in rows))]
    missing = [c for c in predictor.columns if c not in header]
    if missing:
        raise ValueError(f"{args.input}: line 1: columns {missing} not in header {header}")
    picks = [header.index(c) for c in predictor.columns]
    values = []
    for line, row in enumerate(rows[headed:], 1 + headed):
        try:
            values.append([float(row[j]) for j in picks])
        except (ValueError, IndexError):
            raise ValueError(
                f"{args.input}: line {line}: expected numbers in columns {predictor.columns}"
            ) from None
    forecast = predictor.forecast(np.array(values), args.horizon, args.batch_size)
    from .forecast_output import plot_forecast, time_labels

    data_rows = rows[headed:]
    name, labels, past, note = time_labels(header, data_rows, picks, len(forecast))
    out = io.StringIO()
    if fmt == "jsonl":
        for label, row in zip(labels, forecast):
            record = {name: label, **{c: float(v) for c, v in zip(predictor.targets, row)}}
            out.write(strict_json.dumps(record) + "\n")
    else:
        out.write(",".join([name, *predictor.targets]) + "\n")
        for label, row in zip(labels, forecast):
            out.write(",".join([str(label), *(f"{v:.6g}" for v in row)]) + "\n")
    notes = [note]
    if args.plot:
        notes.append(
            plot_forecast(args.plot, predictor, np.array(values), forecast, past, labels, name)
        )
    return out.getvalue(), len(forecast), "steps", {"notes": notes}


def refuse_regress(predictor, text: str, fmt: str | None, args) -> tuple:
    """A regressor of float sequences reads arrays, from Python."""
    raise ValueError(
        f"{args.input}: a regressor of float sequences reads arrays from Python "
        "(kioku.load(run).predict(X)), not text"
    )


WRITERS = {
    "lm": write_lm,
    "classify": write_classify,
    "tag": write_tag,
    "forecast": write_forecast,
    "regress": refuse_regress,
}
