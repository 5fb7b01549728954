"""``kioku sample``: generate text from a language-model checkpoint."""

from __future__ import annotations

import argparse
import sys

from .options import CHECKPOINT_HELP, add_which
from .setting_flags import add_bounded, bounds_problem

HELP = "Generate text from a language-model checkpoint."

LENGTH_MAX = 1_000_000
"""The most tokens one sample draws: each takes a step of the model (a million take
minutes), and a larger request is more likely a slip than a wish."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", help=CHECKPOINT_HELP)
    a(
        "--prefix",
        default=None,
        help="text to continue; every character (or word) must be in the vocabulary "
        "(default: 'def ' for characters, a new sentence for words)",
    )
    add_bounded(parser, "--length", int, 400, "tokens to generate", minimum=1, maximum=LENGTH_MAX)
    add_bounded(
        parser,
        "--temperature",
        float,
        0.8,
        "divides the logits: lower is safer, 0 always takes the most likely",
        minimum=0,
    )
    add_bounded(
        parser,
        "--top-k",
        int,
        None,
        "draw only among the k most likely tokens",
        default_text="all",
        minimum=1,
    )
    add_bounded(
        parser,
        "--seed",
        int,
        None,
        "seed of the draws; the same seed repeats a sample",
        default_text="a fresh one, printed on standard error",
        minimum=0,
    )
    add_which(parser)


def unknown_prefix(prefix: str, vocab) -> str | None:
    """A message naming the first token of ``prefix`` that ``vocab`` lacks, with its
    position, or ``None`` when every token is known."""
    from ..data.vocab import EOS

    position = 0
    for token in vocab.tokenize(prefix):  # the run's own tokenizer
        if token == EOS:
            continue
        if vocab.level == "word":
            position = prefix.index(token, position)
        if token not in vocab.index:
            where = f"character {position}" if vocab.level == "char" else f"offset {position}"
            return f"--prefix: {token!r} at {where} is not in the model's vocabulary"
        position += len(token)
    return None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..train.checkpoint import CheckpointError
    from ..train.restore import load_model
    from . import one_line

    problem = bounds_problem(args)
    if problem:  # before loading: the flag's name, not the sampler's parameter
        print(f"kioku sample: {problem}", file=sys.stderr)
        return 2
    try:
        model, state, vocab, directory = load_model(args.checkpoint, args.which)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"kioku sample: {one_line(error)}", file=sys.stderr)
        return 2
    if not hasattr(model, "sample"):
        print(
            f"kioku sample: {directory} holds a {type(model).__name__}, not a language model",
            file=sys.stderr,
        )
        return 2
    if vocab is None:
        print(
            f"kioku sample: {directory / 'checkpoint.json'}: key 'state.task.vocab' missing "
            "(expected the language model's vocabulary)",
            file=sys.stderr,
        )
        return 2
    prefix = args.prefix if args.prefix is not None else ("def " if vocab.level == "char" else "")
    problem = unknown_prefix(prefix, vocab)
    if problem:
        print(f"kioku sample: {problem}", file=sys.stderr)
        return 2
    ids = vocab.encode(prefix)
    if vocab.level == "word" and ids.size:
        ids = ids[:-1]  # no <eos> after the prompt: continue the sentence
    if ids.size == 0:
        ids = np.array([vocab.eos_id])
    seed = args.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
        print(f"seed {seed} (repeat this sample with --seed {seed})", file=sys.stderr)
    try:
        out = model.sample(ids, args.length, args.temperature, args.top_k, seed)
    except ValueError as error:
        print(f"kioku sample: {one_line(error)}", file=sys.stderr)
        return 2
    joiner = "" if vocab.level == "char" or not prefix else " "
    print(prefix + joiner + vocab.decode(out))
    return 0
