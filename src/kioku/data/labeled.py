"""Labelled text for classification: one example per line, ``label<TAB>text``.

A first line such as ``label<TAB>text`` is a header, not an example: it is taken for one
when its label is not seen again as a label and is a usual header word (``label``,
``class``, ``sentiment``, ...) or its text is one (``text``, ``sentence``, ``review``,
...); ``header=True`` or ``False`` decides instead (``kioku train --header`` /
``--no-header``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .text import read_text

HEADER_LABELS = frozenset(
    "label labels class category target sentiment polarity intent tag y gold topic "
    "emotion stance rating".split()
)
HEADER_TEXTS = frozenset(
    "text texts sentence sentences review document content body comment message tweet "
    "utterance x input question title".split()
)


def looks_like_header(pairs: list[tuple[str, str]]) -> bool:
    """Whether the first of ``pairs`` (``(label, text)``, in file order) is a header
    row: its label never again a label, and the label or the text a usual header word."""
    if len(pairs) < 2:
        return False
    label, text = pairs[0]
    if any(other == label for other, _ in pairs[1:]):
        return False
    return label.lower() in HEADER_LABELS or text.strip().lower() in HEADER_TEXTS


def read_labeled_file(
    path: str | os.PathLike, header: bool | None = None
) -> tuple[list[tuple[str, str]], str | None]:
    """``(label, text)`` pairs of a file of ``label<TAB>text`` lines, and the header line
    left out (``None``: none). ``header``: ``None`` detects it (see the module
    docstring), ``True`` leaves the first line out, ``False`` reads it as an example.
    A line without a tab is a ``ValueError`` naming the file and the line."""
    path = Path(path)
    pairs = []
    first: str | None = None
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if first is None:
            first = line
            if header:  # declared: any first line, tab or not
                continue
        if not sep or not label.strip() or not text.strip():
            raise ValueError(
                f"{path}: line {number}: expected 'label<TAB>text', found {line[:40]!r}"
            )
        pairs.append((label.strip(), text))
    if header is None and looks_like_header(pairs):
        return pairs[1:], first
    return pairs, first if header else None


def read_labeled(path: str | os.PathLike, header: bool | None = None) -> list[tuple[str, str]]:
    """The ``(label, text)`` pairs of :func:`read_labeled_file` (a header left out)."""
    return read_labeled_file(path, header)[0]
