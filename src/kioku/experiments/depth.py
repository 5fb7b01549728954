"""(c) Depth: 1, 2 and 3 stacked LSTM layers as character language models on the default
corpus (Python's standard library source), compared by validation bits per character
against their parameter count, each trained for the same number of updates."""

from __future__ import annotations

import math

import numpy as np

from ..data.stdlib import stdlib_corpus
from ..data.stream import StreamBatcher
from ..data.vocab import Vocabulary
from ..models import LanguageModel
from ..nn.loss import softmax_cross_entropy
from .common import Budget, Stopwatch, optimiser, update


def valid_bits_per_char(model: LanguageModel, ids: np.ndarray) -> float:
    """Mean cross-entropy in bits of every next character of ``ids (N,)`` (8 streams)."""
    model.eval()
    batches = StreamBatcher(ids, batch_size=8, bptt=100)
    state, total, count = None, 0.0, 0
    for x, y in batches.epoch_batches():
        logits, state = model(x, state)
        loss, _ = softmax_cross_entropy(logits, y, reduction="sum")
        total += loss
        count += y.size
    model.train()
    return total / count / math.log(2)


def run(budget: Budget, seed: int = 0, log=print) -> dict:
    """Train one model per depth on the same data, in the same order, from the same seed."""
    corpus = stdlib_corpus()  # whole default corpus, so that valid is a fair sample
    vocab = Vocabulary.build(corpus.train, level="char")
    train_ids = vocab.encode(corpus.train[: budget.pick(400_000, None)])
    valid_ids = vocab.encode(corpus.valid[: budget.pick(20_000, 100_000)])
    hidden = budget.pick(48, 128)
    updates = budget.pick(100, 2000)
    bptt, batch = budget.pick(32, 64), 32
    runs = []
    for layers in (1, 2, 3):
        model = LanguageModel(
            len(vocab),
            embed_size=32,
            hidden_size=hidden,
            num_layers=layers,
            rng=np.random.default_rng(seed),
        )
        opt = optimiser(model, lr=budget.pick(0.01, 0.005))
        batches = StreamBatcher(train_ids, batch_size=batch, bptt=bptt, drop_last=True)
        clock = Stopwatch()
        state, done, losses = None, 0, []
        while done < updates:
            for x, y in batches.epoch_batches():
                loss, state = model.loss(x, y, state)
                update(model, opt, max_norm=5.0)
                losses.append(loss)
                done += 1
                if done == updates:
                    break
        bits = valid_bits_per_char(model, valid_ids)
        runs.append(
            {
                "layers": layers,
                "hidden_size": hidden,
                "parameters": model.num_parameters(),
                "updates": updates,
                "train_bits_per_char": float(np.mean(losses[-20:]) / math.log(2)),
                "valid_bits_per_char": bits,
                "seconds": clock.elapsed,
            }
        )
        log(
            f"depth {layers}: valid {bits:.3f} bits/char, {model.num_parameters()} parameters "
            f"({clock.elapsed:.0f} s)"
        )
    return {
        "corpus": corpus.name,
        "vocab_size": len(vocab),
        "train_chars": int(train_ids.size),
        "valid_chars": int(valid_ids.size),
        "bptt": bptt,
        "batch_size": batch,
        "runs": runs,
    }
