"""Reading user text: UTF-8 files, refused with the file's name when empty or binary."""

from __future__ import annotations

import os
from pathlib import Path

BINARY_PROBE = 8192  # bytes scanned for a NUL, the mark of a binary file


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file
    (and the line of the first bad byte) for an empty, whitespace-only or binary file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{path}: empty file (expected text, found {len(data)} bytes)")
    nul = data.find(b"\0", 0, BINARY_PROBE)
    if nul >= 0:
        raise ValueError(
            f"{path}: binary file (NUL byte at line {_line_of(data, nul)}, byte {nul}); "
            "expected UTF-8 text"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at line "
            f"{_line_of(data, error.start)}, byte {error.start})"
        ) from None


def split_text(text: str, valid: float = 0.05, test: float = 0.05) -> tuple[str, str, str]:
    """Split ``text`` into train/valid/test at line boundaries: the last ``valid + test``
    fraction of characters, valid before test. Deterministic."""
    n = len(text)
    cut_test = text.rfind("\n", 0, int(n * (1 - test))) + 1 or int(n * (1 - test))
    cut_valid = text.rfind("\n", 0, int(n * (1 - test - valid))) + 1 or int(n * (1 - test - valid))
    return text[:cut_valid], text[cut_valid:cut_test], text[cut_test:]
