"""Word and character BiLSTM part-of-speech tagger in PyTorch: the reference for kioku's
character tagger (``kioku train --task tag``), for accuracy and for speed.

    python benchmarks/tagger_char_torch.py [--data DIR] [--epochs 30] [--max-minutes 14]
        [--threads N] [--out FILE.json] [model and optimizer flags, see --help]

The defaults are kioku's ``tag`` preset (``kioku.train.settings.TAG``), flag for flag.

The model of Plank, Soegaard and Goldberg (2016) with the character encoder of Lample
et al. (2016): each token is its word embedding joined to the final forward and backward
states of a BiLSTM over its characters (run once per distinct form of the batch), then
embedding dropout, a stacked BiLSTM with dropout between layers, dropout, and a linear
layer to the UPOS tags. Word dropout replaces a training word by ``<unk>`` with
probability alpha / (alpha + count(word)). Mean cross-entropy over the real tokens.
The dev split is evaluated after every epoch; the best-on-dev parameters are kept in
memory and evaluated on the test split at the end (early stopping: --patience epochs
without improvement, or --max-minutes of wall time).

Data: a Universal Dependencies folder (``train|dev|test.conllu`` or
``*-ud-train|dev|test.conllu``), its vocabularies, batches and scores from
``_conllu_ref.py`` (files read with kioku's CoNLL-U reader); nothing else of kioku but its
core-usage probe, its atomic file write, and the flags' help and defaults (``kioku train``'s
flags, the ``tag`` preset's values). Prints one line per epoch,
the scores and per-tag precision/recall, and last a JSON line (also written to --out).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _conllu_ref import DATA, UNK, Data, print_scores, read_splits, tag_scores
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from kioku.bench import load
from kioku.data.atomic import write_text_atomic
from kioku.train.settings import TAG, TrainSettings
from kioku.train.settings_fields import declared

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
KIOKU_FLAGS = (
    "--embed --char-embed --char-hidden --hidden --layers --dropout --embed-dropout "
    "--word-dropout --lr --lr-decay --decay-start --clip --batch-size --epochs --patience --seed"
).split()
# flag -> (type, help) as kioku train has them ("tag: " is implied here); this tagger always
# reads characters and has no plateau schedule
KIOKU_HELP = {
    setting.flag: (setting.kind, setting.spec.help.removeprefix("tag: "))
    for setting in declared(TrainSettings).values()
}
KIOKU_HELP["--char-embed"] = (int, "char embedding size")
KIOKU_HELP["--lr-decay"] = (float, "multiply lr by this each epoch from --decay-start")


class CharWordTagger(torch.nn.Module):
    """The tagger; its vocabulary sizes, character table and word counts from ``data``,
    its sizes and dropouts from the command line's ``args``."""

    def __init__(self, data: Data, args: argparse.Namespace) -> None:
        super().__init__()
        self.word_embedding = torch.nn.Embedding(len(data.words), args.embed)
        self.char_embedding = torch.nn.Embedding(len(data.chars), args.char_embed)
        self.char_lstm = torch.nn.LSTM(args.char_embed, args.char_hidden, bidirectional=True)
        self.lstm = torch.nn.LSTM(
            args.embed + 2 * args.char_hidden,
            args.hidden,
            args.layers,
            dropout=args.dropout,
            bidirectional=True,
        )
        self.output = torch.nn.Linear(2 * args.hidden, len(data.tags))
        embed_dropout = args.dropout if args.embed_dropout is None else args.embed_dropout
        self.embed_dropout = torch.nn.Dropout(embed_dropout)
        self.dropout = torch.nn.Dropout(args.dropout)
        # buffers, not parameters: the character spelling of every form, and each word's
        # chance of being replaced by <unk> in training (none for <pad> and <unk>)
        self.register_buffer("char_table", torch.from_numpy(data.char_table), persistent=False)
        self.register_buffer("char_lengths", torch.from_numpy(data.char_lengths), False)
        counts = np.array([np.inf, np.inf] + list(data.counts.values()))
        alpha = args.word_dropout
        self.register_buffer("unk_chance", torch.from_numpy(alpha / (alpha + counts)), False)

    def encode_chars(self, forms: torch.Tensor) -> torch.Tensor:
        """(T, B) form ids -> (T, B, 2 * char_hidden): the final forward and backward
        states of the character BiLSTM, run once per distinct form."""
        unique, inverse = torch.unique(forms, return_inverse=True)
        lengths = self.char_lengths[unique]
        chars = self.char_embedding(self.char_table[unique, : int(lengths.max())])
        packed = pack_padded_sequence(chars, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.char_lstm(packed)
        return torch.cat([h[0], h[1]], dim=1)[inverse]

    def drop_words(self, words: torch.Tensor) -> torch.Tensor:
        """Word dropout: in training, each id of ``words`` (any shape) becomes <unk> with
        its ``unk_chance``; unchanged in evaluation."""
        if not self.training or not self.unk_chance.max() > 0:
            return words
        return words.masked_fill(torch.rand(words.shape) < self.unk_chance[words], UNK)

    def forward(self, words, forms, lengths):
        """(T, B) word and form ids, (B,) lengths -> (T, B, tags) logits."""
        x = torch.cat([self.word_embedding(self.drop_words(words)), self.encode_chars(forms)], 2)
        packed = pack_padded_sequence(self.embed_dropout(x), lengths, enforce_sorted=False)
        y, _ = pad_packed_sequence(self.lstm(packed)[0], total_length=words.shape[0])
        return self.output(self.dropout(y))


def evaluate(model: CharWordTagger, data: Data, split: str, batch_size: int) -> dict:
    """:func:`tag_scores` of the model's tags on ``split``."""
    model.eval()
    predicted = []
    with torch.no_grad():
        for words, forms, _, lengths in data.batches(split, batch_size):
            logits = model(*(torch.from_numpy(a) for a in (words, forms, lengths)))
            best = logits.argmax(2).T.numpy()
            predicted += [[data.tags[t] for t in row[:n]] for row, n in zip(best, lengths)]
    return tag_scores(data.sentences[split], predicted, set(data.counts))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--data",
        default=str(DATA),
        help="UD folder (default $KIOKU_BENCH_DATA/ud-gum or ../shared/data/ud-gum)",
    )
    # the model, batch, optimizer and stopping flags are kioku train's: its help, and the
    # tag preset's defaults and types, so the two runs cannot drift apart
    for flag in KIOKU_FLAGS:
        name = flag[2:].replace("-", "_")
        default, (kind, text) = getattr(TAG, name), KIOKU_HELP[flag]
        add(flag, type=kind, default=default, help=f"{text} (default {default})")
    for flag, kind, default, text in (
        ("--max-minutes", float, TAG.max_time / 60, "stop training after this much wall time"),
        ("--threads", int, CORES, "torch threads (default all cores)"),
        ("--idle-seconds", float, load.BEFORE_S, "window of the core-usage probe before/after"),
    ):
        add(flag, type=kind, default=default, help=f"{text} (default {default})")
    add("--optimizer", choices=("adam", "sgd"), default="adam", help="(default adam)")
    add("--out", default=None, help="write the JSON result here too (atomically)")
    args = parser.parse_args(argv)
    for names, good, expected in (
        (("embed", "char_embed", "char_hidden", "hidden", "layers"), lambda v: v >= 1, ">= 1"),
        (("batch_size", "epochs", "threads"), lambda v: v >= 1, ">= 1"),
        (("dropout", "embed_dropout"), lambda v: v is None or 0 <= v < 1, "a number in [0, 1)"),
        (("word_dropout", "clip", "patience"), lambda v: v >= 0, ">= 0"),
        (("decay_start",), lambda v: v is None or v >= 0, ">= 0"),
        (("lr", "max_minutes", "idle_seconds"), lambda v: v > 0, "> 0"),
        (("lr_decay",), lambda v: v is None or 0 < v <= 1, "a number in (0, 1]"),
    ):
        for name in names:
            if not good(getattr(args, name)):
                flag = "--" + name.replace("_", "-")
                parser.error(f"{flag}: expected {expected}, found {getattr(args, name)}")
    return args


def train(model: CharWordTagger, data: Data, args: argparse.Namespace) -> dict:
    """Train with early stopping on dev; leaves the best-on-dev parameters in ``model``."""
    rng = np.random.default_rng(args.seed)
    optim = torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD
    optimizer = optim(model.parameters(), lr=args.lr)
    gamma = args.lr_decay or 1.0
    start_epoch = 1 if args.decay_start is None else args.decay_start  # None: StepDecay's 1
    schedule = torch.optim.lr_scheduler.LambdaLR(  # kioku's StepDecay(gamma, 1, decay_start)
        optimizer, lambda e: gamma ** (0 if e < start_epoch else 1 + e - start_epoch)
    )
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
    deadline = time.perf_counter() + 60 * args.max_minutes
    best, best_state, best_epoch, history = -1.0, None, 0, []
    stopped, train_seconds, sentences = "epochs", 0.0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        began, losses = time.perf_counter(), []
        for batch in data.batches("train", args.batch_size, rng):
            words, forms, tags, lengths = (torch.from_numpy(a) for a in batch)
            optimizer.zero_grad()
            logits = model(words, forms, lengths)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tags.reshape(-1))
            loss.backward()
            if args.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            losses.append(loss.item())
            sentences += len(lengths)
            if time.perf_counter() > deadline:
                stopped = "max-minutes"
                break
        seconds = time.perf_counter() - began
        train_seconds += seconds
        dev = evaluate(model, data, "dev", args.batch_size)
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                "seconds": seconds,
                "dev_accuracy": dev["accuracy"],
                "lr": schedule.get_last_lr()[0],
            }
        )
        print(
            f"epoch {epoch}: loss {history[-1]['loss']:.4f}, dev {dev['accuracy']:.2%} "
            f"(unseen {dev['unseen_accuracy'] or 0:.2%}), {seconds:.1f} s",
            flush=True,
        )
        if dev["accuracy"] > best:
            best, best_epoch, best_dev = dev["accuracy"], epoch, dev
            best_state = copy.deepcopy(model.state_dict())
        elif args.patience and epoch - best_epoch >= args.patience:
            stopped = "patience"
        if stopped != "epochs":
            break
        schedule.step()
    model.load_state_dict(best_state)
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stopped_by": stopped,
        "train_seconds": train_seconds,
        "train_sentences": sentences,
        "dev": best_dev,
        "history": history,
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if not Path(args.data).is_dir():  # a fresh clone has no ../shared: say so, as whole_task.py
        print(f"skipped: {args.data} not found (--data to point elsewhere)")
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = Data(read_splits(args.data))
    model = CharWordTagger(data, args)
    probe = load.LoadProbe()
    before = load.measure_idle(probe, args.idle_seconds)
    start, began = probe.sample(), time.perf_counter()
    result = {
        "task": "tagger-char",
        "library": "torch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "settings": vars(args),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": {"words": len(data.words), "chars": len(data.chars), "tags": len(data.tags)},
        **train(model, data, args),
    }
    result["test"] = evaluate(model, data, "test", args.batch_size)
    result["wall_seconds"] = time.perf_counter() - began
    during = load.others_share(start, probe.sample())
    after = load.measure_idle(probe, args.idle_seconds)
    result["sentences_per_s"] = result["train_sentences"] / result["train_seconds"]
    result["seconds_per_epoch"] = result["train_seconds"] / result["epochs_run"]
    # no sgemm witness (1.0 at both ends): the cores' usage before and during decides
    result["load"] = load.verdict(before, during, {}, 1.0, 1.0, None)
    result["load"]["others_share_after"] = after
    print_scores(result)
    print(
        f"{result['epochs_run']} epochs (best {result['best_epoch']}, stopped by "
        f"{result['stopped_by']}) in {result['wall_seconds']:.1f} s, "
        f"{result['sentences_per_s']:,.1f} training sentences/s, {result['threads']} threads; "
        f"other processes used {before or 0:.0%} / {during or 0:.0%} / {after or 0:.0%} "
        f"of the cores before / during / after"
    )
    line = json.dumps(result)
    if args.out and (result["load"]["valid"] or not load.results_folder(args.out)):
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    elif args.out:
        print(f"NOT VALID: nothing written to {args.out}", file=sys.stderr)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
