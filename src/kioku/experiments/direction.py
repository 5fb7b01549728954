"""(d) Direction: a unidirectional against a bidirectional LSTM tagger when a word's tag is
decided by the words after it (the seed's example: in "Apple is something that I like to
eat" only the later words tell the fruit from the company), and on a CoNLL-U treebank
when one is given.

The generated sentences put an ambiguous word (apple, amazon, jaguar, ...) near the
start, then fillers, then one context word of one sense ("eat", "river"... or "shares",
"released"...), then more fillers. The ambiguous word is tagged with the sense of the
context word (1 company, 2 thing), every other word with 0.
"""

from __future__ import annotations

import os

import numpy as np

from ..data.padded import pad_batch
from ..data.vocab import SPECIALS, Vocabulary
from ..models import SequenceTagger
from .common import Budget, Stopwatch, optimiser, update

AMBIGUOUS = ["apple", "amazon", "jaguar", "python", "java", "shell"]
COMPANY = ["shares", "released", "announced", "stock", "hired", "sued", "profits", "ceo"]
THING = ["eat", "tree", "ripe", "river", "wild", "jungle", "beach", "juice"]
FILLERS = [
    "the",
    "a",
    "i",
    "think",
    "that",
    "really",
    "today",
    "new",
    "my",
    "friend",
    "said",
    "very",
    "is",
    "something",
    "like",
    "to",
    "and",
    "it",
    "was",
    "so",
]


def tagging_vocabulary() -> Vocabulary:
    return Vocabulary(list(SPECIALS) + AMBIGUOUS + COMPANY + THING + FILLERS + ["."], "word")


def ambiguous_sentences(rng: np.random.Generator, count: int) -> list[tuple[list[str], list[int]]]:
    """``count`` sentences as ``(words, tags)``."""
    sentences = []
    for _ in range(count):
        sense = int(rng.integers(1, 3))
        context = rng.choice(COMPANY if sense == 1 else THING)
        before = list(rng.choice(FILLERS, int(rng.integers(0, 3))))
        middle = list(rng.choice(FILLERS, int(rng.integers(0, 4))))
        after = list(rng.choice(FILLERS, int(rng.integers(0, 4))))
        words = before + [rng.choice(AMBIGUOUS)] + middle + [context] + after + ["."]
        tags = [0] * len(words)
        tags[len(before)] = sense
        sentences.append(([str(w) for w in words], tags))
    return sentences


def encode(sentences, vocab: Vocabulary, tag_ids: dict | None = None):
    """``(x (T, B), tags (T, B), lengths (B,))`` from ``(words, tags)`` pairs."""
    ids = [np.array([vocab.index.get(w, 0) for w in words], np.int64) for words, _ in sentences]
    tags = [
        np.array([t if tag_ids is None else tag_ids.get(t, 0) for t in tg], np.int64)
        for _, tg in sentences
    ]
    x, lengths = pad_batch(ids)
    y, _ = pad_batch(tags)
    return x, y, lengths


def train_tagger(train, test, vocab, num_tags, bidirectional, updates, seed, tag_ids=None):
    """Train a :class:`SequenceTagger`; returns its predictions on ``test`` and seconds."""
    rng = np.random.default_rng(seed)
    model = SequenceTagger(
        len(vocab),
        embed_size=32,
        hidden_size=32,
        num_tags=num_tags,
        bidirectional=bidirectional,
        rng=rng,
    )
    opt = optimiser(model, lr=0.01)
    clock = Stopwatch()
    for _ in range(updates):
        picked = rng.choice(len(train), min(32, len(train)), replace=False)
        x, y, lengths = encode([train[i] for i in picked], vocab, tag_ids)
        model.loss(x, y, lengths)
        update(model, opt, max_norm=5.0)
    x, y, lengths = encode(test, vocab, tag_ids)
    return model.predict(x, lengths), y, lengths, clock.elapsed


def generated(budget: Budget, seed: int, log=print) -> dict:
    rng = np.random.default_rng(seed)
    train, test = ambiguous_sentences(rng, 2000), ambiguous_sentences(rng, 500)
    vocab = tagging_vocabulary()
    results = {}
    for bidirectional in (False, True):
        name = "bidirectional" if bidirectional else "unidirectional"
        pred, y, lengths, seconds = train_tagger(
            train, test, vocab, 3, bidirectional, budget.pick(100, 600), seed
        )
        valid = np.arange(y.shape[0])[:, None] < lengths
        ambiguous = valid & (y > 0)
        results[name] = {
            "token_accuracy": float((pred == y)[valid].mean()),
            "ambiguous_word_accuracy": float((pred == y)[ambiguous].mean()),
            "seconds": seconds,
        }
        log(
            f"direction, generated, {name}: ambiguous words "
            f"{results[name]['ambiguous_word_accuracy']:.3f} correct ({seconds:.0f} s)"
        )
    return {"train_sentences": len(train), "test_sentences": len(test), "models": results}


def treebank(path: str | os.PathLike, budget: Budget, seed: int, log=print) -> dict:
    """UPOS tagging of a CoNLL-U file: the first 90% of shuffled sentences train, the
    rest test; words are lower-cased, those unseen in training map to ``<unk>``."""
    from ..data.conllu_io import read_conllu

    sentences = [
        ([w.lower() for w in words][:60], tags[:60]) for words, tags in read_conllu(path) if words
    ]
    if len(sentences) < 10:
        raise ValueError(
            f"conllu: expected at least 10 sentences, found {len(sentences)} in {path}"
        )
    order = np.random.default_rng(seed).permutation(len(sentences))
    cut = int(len(sentences) * 0.9)
    train = [sentences[i] for i in order[:cut]]
    test = [sentences[i] for i in order[cut:]]
    vocab = Vocabulary.build([" ".join(w) for w, _ in train], level="word")
    tag_names = sorted({t for _, tags in train for t in tags})
    tag_ids = {t: k for k, t in enumerate(tag_names)}
    results = {}
    for bidirectional in (False, True):
        name = "bidirectional" if bidirectional else "unidirectional"
        pred, y, lengths, seconds = train_tagger(
            train,
            test,
            vocab,
            len(tag_names),
            bidirectional,
            budget.pick(200, 1500),
            seed,
            tag_ids,
        )
        valid = np.arange(y.shape[0])[:, None] < lengths
        results[name] = {"token_accuracy": float((pred == y)[valid].mean()), "seconds": seconds}
        log(
            f"direction, {os.path.basename(str(path))}, {name}: "
            f"{results[name]['token_accuracy']:.3f} of tags correct ({seconds:.0f} s)"
        )
    return {
        "file": str(path),
        "train_sentences": len(train),
        "test_sentences": len(test),
        "tags": tag_names,
        "models": results,
    }


def run(budget: Budget, seed: int = 0, conllu: str | None = None, log=print) -> dict:
    result = {"generated": generated(budget, seed, log)}
    if conllu is not None:
        result["conllu"] = treebank(conllu, budget, seed, log)
    return result
