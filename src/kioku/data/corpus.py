"""Text corpora split into train/valid/test, and the resolution of a data name.

A data name is ``stdlib`` (the default: Python's own source), ``ptb`` (the Penn
Treebank, word level), a folder whose split files are found by their names
(:func:`kioku.data.splits.find_splits`: ``ptb.train.txt``, ``valid.txt``, ``dev.txt``,
...; never concatenated), or a single text file (split 90/5/5 at line boundaries, in
order: valid and test are the contiguous tail, as a text is a sequence).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .splits import SPLITS, SplitFiles, find_splits
from .text import read_text, split_text


@dataclass
class Corpus:
    """Three splits of raw text and where they came from."""

    name: str
    train: str
    valid: str
    test: str
    default_level: str = "char"
    files: SplitFiles | None = None  # where each split came from (None: built in)

    def split(self, name: str) -> str:
        """The text of split ``name`` (train, valid or test)."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split: expected train, valid or test, found {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Characters per split."""
        return {s: len(getattr(self, s)) for s in ("train", "valid", "test")}


def corpus_from_path(path: str | os.PathLike) -> Corpus:
    """A corpus from a text file or a folder (see the module docstring); the paths are
    made absolute. ``FileNotFoundError`` or ``ValueError`` in one line."""
    files = find_splits(path)
    if files.single is not None:
        texts = split_text(read_text(files.single))
    else:
        texts = tuple(read_text(files.files[s]) for s in SPLITS)
    return Corpus(str(files.source), *texts, files=files)


def load_corpus(spec: str | None) -> Corpus:
    """Resolve a data name (``None`` or ``stdlib``, ``ptb``, a path) to a corpus."""
    if spec in (None, "stdlib"):
        from .stdlib import stdlib_corpus

        return stdlib_corpus()
    if spec == "ptb":
        from .ptb import ptb_corpus

        return ptb_corpus()
    return corpus_from_path(spec)
