"""Labelled text for classification: one example per line, ``label<TAB>text``."""

from __future__ import annotations

import os
from pathlib import Path

from .text import read_text


def read_labeled(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(label, text)`` pairs of a file of ``label<TAB>text`` lines; a line without a tab
    is a ``ValueError`` naming the file and the line."""
    path = Path(path)
    pairs = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or not label.strip() or not text.strip():
            raise ValueError(
                f"{path}: line {number}: expected 'label<TAB>text', found {line[:40]!r}"
            )
        pairs.append((label.strip(), text))
    return pairs
