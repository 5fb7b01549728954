"""CoNLL-U reading (Universal Dependencies) through the ``conllu`` package, imported lazily."""

from __future__ import annotations

import os
from pathlib import Path

from .text import read_text


def read_conllu(path: str | os.PathLike, column: str = "upos") -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-U file as ``(words, tags)`` pairs, tags from ``column``
    (``upos`` by default). Multi-word token ranges and empty nodes are skipped.

    Errors name the file and, where the parser says it, the line.
    """
    try:
        import conllu
    except ImportError:
        raise ImportError(
            "reading CoNLL-U needs the 'conllu' package: pip install conllu "
            "(or pip install 'kioku-lstm[train]')"
        ) from None
    path = Path(path)
    text = read_text(path)
    line = _first_bad_line(text)
    if line is not None:  # the parser accepts short rows; the format does not
        found = len(text.splitlines()[line - 1].split("\t"))
        raise ValueError(
            f"{path}: invalid CoNLL-U at line {line}: expected 10 tab-separated fields, "
            f"found {found}"
        )
    try:
        sentences = conllu.parse(text)
    except Exception as error:  # conllu raises its own ParseException subclasses
        raise ValueError(f"{path}: invalid CoNLL-U: {error}") from None
    result = []
    for sentence in sentences:
        words, tags = [], []
        for token in sentence:
            if not isinstance(token["id"], int):
                continue  # 1-2 ranges and 1.1 empty nodes
            words.append(token["form"])
            tags.append(str(token[column]))
        if words:
            result.append((words, tags))
    if not result:
        raise ValueError(f"{path}: no sentences found (expected CoNLL-U)")
    return result


def _first_bad_line(text: str) -> int | None:
    """1-based number of the first token line without 10 tab-separated fields."""
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith("#") and len(line.split("\t")) != 10:
            return number
    return None
