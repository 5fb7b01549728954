"""UD part-of-speech data for the reference taggers (``tagger_char_torch.py``): the split
files of a treebank folder, the vocabularies of its training split, padded batches of
id arrays, and the scores (accuracy on all tokens and on unseen words, per-tag precision
and recall). NumPy only; files are read with kioku's CoNLL-U reader
(``kioku.data.conllu_io``: the ``conllu`` package, multiword-token lines and empty nodes
skipped).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kioku.data.conllu_io import read_conllu

# whole_task.py's data root (KIOKU_BENCH_DATA, else ../shared/data beside the repository)
DATA = (
    Path(
        os.environ.get(
            "KIOKU_BENCH_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
        )
    )
    / "ud-gum"
)
PAD, UNK = 0, 1  # ids of <pad> and <unk> in both the word and the character vocabulary
MAX_CHARS = 30  # longer words are cut: their characters past this do not reach the tagger
Sentence = tuple[list[str], list[str]]


def split_file(folder: Path, split: str) -> Path:
    """``<split>.conllu`` in ``folder``, else the one ``*-ud-<split>.conllu`` file."""
    plain = folder / f"{split}.conllu"
    found = [plain] if plain.is_file() else sorted(folder.glob(f"*-ud-{split}.conllu"))
    if len(found) != 1:
        raise ValueError(
            f"--data: expected one {split}.conllu or *-ud-{split}.conllu in {folder}, "
            f"found {len(found)}"
        )
    return found[0]


def tag_scores(sentences: list[Sentence], predicted: list[list[str]], seen: set[str]) -> dict:
    """Accuracy over all tokens and over tokens whose form (exact, case-sensitive) is not
    in ``seen``, and per-tag precision and recall. ``sentences``: (words, gold tags)
    pairs; ``predicted``: one tag per word of each sentence. Accuracies with no token to
    count are ``None``; so are the precision of a tag never predicted and the recall of
    a tag never gold."""
    counts = Counter()
    for (words, gold), guess in zip(sentences, predicted, strict=True):
        if len(guess) != len(gold):
            raise ValueError(f"predicted: expected {len(gold)} tags, found {len(guess)}")
        for word, g, p in zip(words, gold, guess):
            counts["tokens"] += 1
            counts["correct"] += g == p
            counts["unseen"] += word not in seen
            counts["unseen_correct"] += word not in seen and g == p
            counts["gold", g] += 1
            counts["pred", p] += 1
            counts["hit", g] += g == p
    tags = sorted({key[1] for key in counts if isinstance(key, tuple)})
    ratio = lambda a, b: counts[a] / counts[b] if counts[b] else None  # noqa: E731
    return {
        "accuracy": ratio("correct", "tokens"),
        "tokens": counts["tokens"],
        "unseen_accuracy": ratio("unseen_correct", "unseen"),
        "unseen_tokens": counts["unseen"],
        "per_tag": {
            t: {
                "precision": ratio(("hit", t), ("pred", t)),
                "recall": ratio(("hit", t), ("gold", t)),
                "gold": counts["gold", t],
                "predicted": counts["pred", t],
            }
            for t in tags
        },
    }


class Data:
    """The splits as id arrays; ``counts``, ``words`` and ``chars``: the training
    split's word counts, word ids and character ids (each with <pad> and <unk>);
    ``tags``: the training split's tags, sorted (another split's tag unseen there has
    id -1); ``char_table`` (forms, MAX_CHARS) and ``char_lengths`` (forms,): the
    character ids of every form of every split (row 0: the padding form, one <pad>)."""

    def __init__(self, splits: dict[str, list[Sentence]]) -> None:
        train = splits["train"]
        self.counts = Counter(w for words, _ in train for w in words)
        self.words = {"<pad>": PAD, "<unk>": UNK} | {w: i + 2 for i, w in enumerate(self.counts)}
        chars = sorted({c for w in self.counts for c in w[:MAX_CHARS]})
        self.chars = {"<pad>": PAD, "<unk>": UNK} | {c: i + 2 for i, c in enumerate(chars)}
        self.tags = sorted({t for _, tags in train for t in tags})
        forms = {"": 0}
        for sents in splits.values():
            for words, _ in sents:
                forms.update((w, len(forms)) for w in words if w not in forms)
        self.char_table = np.zeros((len(forms), MAX_CHARS), np.int64)
        self.char_lengths = np.ones(len(forms), np.int64)  # the padding form: one <pad>
        for form, i in forms.items():
            ids = [self.chars.get(c, UNK) for c in form[:MAX_CHARS]]
            self.char_table[i, : len(ids)] = ids
            self.char_lengths[i] = max(1, len(ids))
        tag_id = {t: i for i, t in enumerate(self.tags)}
        self.sentences = splits
        self.encoded = {
            name: [
                (
                    np.array([self.words.get(w, UNK) for w in words]),
                    np.array([forms[w] for w in words]),
                    np.array([tag_id.get(t, -1) for t in tags]),
                )
                for words, tags in sents
            ]
            for name, sents in splits.items()
        }

    def batches(
        self, split: str, size: int, rng: np.random.Generator | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """``size`` sentences at a time: word ids, form ids (rows of ``char_table``) and tag
        ids of shape (T, B), padded with PAD, PAD and -1, and the lengths (B,); in file
        order, or shuffled by ``rng``."""
        data = self.encoded[split]
        order = np.arange(len(data)) if rng is None else rng.permutation(len(data))
        for start in range(0, len(order), size):
            chosen = [data[i] for i in order[start : start + size]]
            lengths = np.array([len(s[0]) for s in chosen])
            arrays = [np.full((lengths.max(), len(chosen)), fill) for fill in (PAD, PAD, -1)]
            for b, sentence in enumerate(chosen):
                for array, values in zip(arrays, sentence):
                    array[: len(values), b] = values
            yield (*arrays, lengths)


def read_splits(folder: str | Path) -> dict[str, list[Sentence]]:
    """(words, UPOS tags) sentences of the train, dev and test files of ``folder``."""
    return {name: read_conllu(split_file(Path(folder), name)) for name in ("train", "dev", "test")}


def print_scores(result: dict) -> None:
    """The dev and test accuracies of ``result`` and the test's per-tag table."""
    for split in ("dev", "test"):
        s = result[split]
        print(
            f"{split}: accuracy {s['accuracy']:.2%} of {s['tokens']:,} tokens, unseen words "
            f"{s['unseen_accuracy'] or 0:.2%} of {s['unseen_tokens']:,}"
        )
    print("tag    precision  recall   gold")
    for tag, s in result["test"]["per_tag"].items():
        p, r = (
            f"{v:9.2%}" if v is not None else "        -" for v in (s["precision"], s["recall"])
        )
        print(f"{tag:6} {p} {r} {s['gold']:6}")
