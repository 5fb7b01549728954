"""New input for a trained model, from a file or standard input alike, checked the same.

``read_input`` takes a path or ``-`` (standard input, read as bytes) and refuses, naming
the file or "standard input" and the line: empty input, binary bytes (NUL), invalid
UTF-8, and a line longer than a stated limit (:data:`MAX_LINE_CHARS`; found without a
copy per character). ``conllu_sentences`` reads CoNLL-U word lines, refusing a row
whose ID is not a word number, range or empty node, or that lacks a column, with its
line: a 9-column file is refused as the damaged CoNLL-U it is, never read as plain text.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

STDIN = "-"
# the longest line read (characters): beyond it a character model's one sequence and a
# CSV field (Python's csv stops at 131072 characters) fail deep inside; refused first
MAX_LINE_CHARS = 131072
BINARY_PROBE = 8192  # bytes scanned for a NUL, the mark of a binary file
CONLLU_COLUMNS = 10


def input_name(name: str | os.PathLike) -> str:
    """How messages name an input: ``standard input`` for ``-``, else the path."""
    return "standard input" if str(name) == STDIN else str(name)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_input(data: bytes, where: str, max_line: int = MAX_LINE_CHARS) -> str:
    """The UTF-8 text of ``data`` read from ``where`` (a file's path, ``standard
    input``); ``ValueError`` naming ``where`` (and the line) for empty or whitespace-only
    input, binary bytes, invalid UTF-8 or a line over ``max_line`` characters."""
    noun = "input" if where == input_name(STDIN) else "file"
    if not data.strip():
        raise ValueError(f"{where}: empty {noun} (expected text, found {len(data)} bytes)")
    nul = data.find(b"\0", 0, BINARY_PROBE)
    if nul < 0:
        nul = data.find(b"\0")
    if nul >= 0:
        raise ValueError(
            f"{where}: binary {noun} (NUL byte at line {_line_of(data, nul)}, byte {nul}); "
            "expected UTF-8 text"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{where}: not UTF-8 text (byte 0x{data[error.start]:02x} at line "
            f"{_line_of(data, error.start)}, byte {error.start})"
        ) from None
    check_line_lengths(text, where, max_line)
    return text


def check_line_lengths(text: str, where: str, max_line: int = MAX_LINE_CHARS) -> None:
    """``ValueError`` naming ``where`` and the line when a line of ``text`` is longer
    than ``max_line`` characters. Scans with ``str.find`` (no copy of the text)."""
    if len(text) <= max_line:
        return
    start, number = 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end - start > max_line:
            raise ValueError(
                f"{where}: line {number}: {end - start} characters, more than the limit of "
                f"{max_line}"
            )
        start, number = end + 1, number + 1


def read_input(
    name: str | os.PathLike, stdin: BinaryIO | None = None, max_line: int = MAX_LINE_CHARS
) -> str:
    """The text of file ``name``, or of standard input for ``-`` (its bytes, so that
    binary input and invalid UTF-8 get the checks a file gets): see :func:`decode_input`.
    ``stdin``: the stream read for ``-`` (default: ``sys.stdin``'s bytes)."""
    if str(name) == STDIN:
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream put in place of sys.stdin (tests, notebooks)
            data = sys.stdin.read().encode("utf-8", "surrogatepass")
        else:
            data = stream.read()
        return decode_input(data, input_name(name), max_line)
    path = Path(name)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: a folder (expected a text file)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return decode_input(path.read_bytes(), str(path), max_line)


# -- CoNLL-U ------------------------------------------------------------------------------
def looks_like_conllu(text: str) -> bool:
    """Whether ``text`` is meant as CoNLL-U: its first line that is neither blank nor a
    ``#`` comment holds a tab after a number (the ID column). A row then missing a column
    is refused by :func:`conllu_sentences`, not read as plain text."""
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            first, tab, _ = line.partition("\t")
            return bool(tab) and first[:1].isdigit()
    return False


def _word_number(cell: str) -> bool:
    return cell.isdigit() and cell.isascii() and int(cell) >= 1


def _id_kind(cell: str) -> str | None:
    """``"word"``, ``"range"`` (``1-2``), ``"empty"`` (``1.1``), or ``None`` (not an ID)."""
    if _word_number(cell):
        return "word"
    for mark, kind in (("-", "range"), (".", "empty")):
        left, sep, right = cell.partition(mark)
        if sep and left.isdigit() and left.isascii() and right.isdigit() and right.isascii():
            return kind
    return None


def conllu_sentences(text: str, where: str) -> tuple[list[list[str]], list[int]]:
    """The words of each sentence of CoNLL-U ``text`` (word lines only: no ranges
    ``1-2``, no empty nodes ``1.1``) and the line index of each word, in order.
    ``ValueError`` naming ``where`` and the line for a row without 10 tab-separated
    columns or whose ID is not a word number, a range or an empty node."""
    sentences: list[list[str]] = []
    rows: list[int] = []
    current: list[str] = []
    for index, line in enumerate(text.splitlines()):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        if line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != CONLLU_COLUMNS:
            raise ValueError(
                f"{where}: line {index + 1}: expected {CONLLU_COLUMNS} tab-separated CoNLL-U "
                f"columns, found {len(cells)}"
            )
        kind = _id_kind(cells[0])
        if kind is None:
            raise ValueError(
                f"{where}: line {index + 1}: ID {cells[0]!r}: expected a word number (1, 2, "
                "...), a range (1-2) or an empty node (1.1)"
            )
        if kind == "word":
            rows.append(index)
            current.append(cells[1])
    if current:
        sentences.append(current)
    return sentences, rows
