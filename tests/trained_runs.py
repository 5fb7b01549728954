"""Small runs of each task, trained once per test module through ``kioku train``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from conllu_text import conllu_text

from kioku.cli import main

LEXICON = {
    "DET": ["the", "a", "this"],
    "NOUN": ["cat", "dog", "bird", "fish"],
    "VERB": ["runs", "sleeps", "sings", "swims"],
}
LABEL_WORDS = {"pos": ["good", "fine", "nice", "great"], "neg": ["bad", "awful", "poor", "dull"]}


def write_data(folder: Path) -> dict[str, Path]:
    """A text, labelled lines, a CoNLL-U treebank and a seasonal CSV series."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    code = folder / "code.py"
    code.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(200)))
    labels = folder / "reviews.tsv"
    lines = []
    for i in range(200):
        label = "pos" if i % 3 else "neg"
        words = rng.choice(LABEL_WORDS[label], 2, replace=False)
        lines.append(f"{label}\t{' '.join(words)} film {i % 5}\n")
    labels.write_text("".join(lines))
    sentences = [
        [(LEXICON[tag][rng.integers(len(LEXICON[tag]))], tag) for tag in ("DET", "NOUN", "VERB")]
        for _ in range(120)
    ]
    conllu = folder / "animals.conllu"
    conllu.write_text(conllu_text(sentences))
    series = folder / "sales.csv"
    values = [100 + 20 * math.sin(2 * math.pi * i / 7) + rng.normal() for i in range(300)]
    series.write_text("day,units\n" + "".join(f"{i},{v:.3f}\n" for i, v in enumerate(values)))
    return {"lm": code, "classify": labels, "tag": conllu, "forecast": series}


SIZES = {
    "lm": [
        "--hidden",
        "16",
        "--embed",
        "8",
        "--bptt",
        "16",
        "--max-steps",
        "8",
        "--eval-every",
        "4",
    ],
    "classify": ["--hidden", "16", "--embed", "8", "--epochs", "4"],
    "tag": ["--hidden", "16", "--embed", "8", "--epochs", "3"],
    "forecast": ["--hidden", "16", "--window", "14", "--horizon", "3", "--epochs", "3"],
}


def train_all(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """The data files and the run folders of one small run per task."""
    data = write_data(folder / "data")
    runs = {}
    for task, path in data.items():
        runs[task] = folder / "runs" / task
        argv = ["train", "--task", task, "--data", str(path), "--out", str(runs[task])]
        assert main([*argv, *SIZES[task], "--batch-size", "8", "--no-progress"]) == 0, task
    return data, runs
