"""Text corpora split into train/valid/test, and the resolution of a data name.

A data name is ``stdlib`` (the default: Python's own source), ``ptb`` (the Penn
Treebank, word level), a directory holding ``train.txt``/``valid.txt``/``test.txt``
(``dev.txt`` may stand for ``valid.txt``; or any text files, concatenated in sorted order
and split), or a single text file
(split 90/5/5 at line boundaries).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .text import read_text, split_text, text_files


@dataclass
class Corpus:
    """Three splits of raw text and where they came from."""

    name: str
    train: str
    valid: str
    test: str
    default_level: str = "char"

    def split(self, name: str) -> str:
        """The text of split ``name`` (train, valid or test)."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split: expected train, valid or test, found {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Characters per split."""
        return {s: len(getattr(self, s)) for s in ("train", "valid", "test")}


def corpus_from_path(path: str | os.PathLike) -> Corpus:
    """A corpus from a text file or a directory (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        for valid in ("valid", "dev"):  # dev: the validation split's other usual name
            named = [path / f"{s}.txt" for s in ("train", valid, "test")]
            if all(p.is_file() for p in named):
                return Corpus(str(path), *(read_text(p) for p in named))
        text = "".join(read_text(p) for p in text_files(path))
        return Corpus(str(path), *split_text(text))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return Corpus(str(path), *split_text(read_text(path)))


def load_corpus(spec: str | None) -> Corpus:
    """Resolve a data name (``None`` or ``stdlib``, ``ptb``, a path) to a corpus."""
    if spec in (None, "stdlib"):
        from .stdlib import stdlib_corpus

        return stdlib_corpus()
    if spec == "ptb":
        from .ptb import ptb_corpus

        return ptb_corpus()
    return corpus_from_path(spec)
