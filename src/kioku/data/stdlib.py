"""The default corpus: the Python standard library's own source, found via ``sysconfig``.

Every Python install has it, so ``kioku train`` needs no download. The subset is fixed:
the top-level ``*.py`` files of the stdlib directory of at most ``MAX_FILE_BYTES``
(a few huge modules would otherwise dominate a split), sorted by name, taken in order
until about ``MAX_BYTES``; each file goes to a split by a CRC-32 of its name (1 in 20 to
valid, 1 in 20 to test), so the split never depends on file order or on the machine.
"""

from __future__ import annotations

import sysconfig
import zlib
from pathlib import Path

from .corpus import Corpus

MAX_BYTES = 3_000_000
MAX_FILE_BYTES = 100_000
SPLIT_MODULUS = 20  # crc % 20 == 0 -> test, == 1 -> valid, else train


def stdlib_dir() -> Path:
    """The directory of the running Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(max_bytes: int = MAX_BYTES) -> list[Path]:
    """The fixed sorted subset of stdlib source files (see the module docstring)."""
    root = stdlib_dir()
    files, total = [], 0
    for path in sorted(root.glob("*.py")):
        if total >= max_bytes:
            break
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        files.append(path)
        total += path.stat().st_size
    if not files:
        raise FileNotFoundError(f"{root}: no Python source files found for the default corpus")
    return files


def split_of(path: Path) -> str:
    """``train``, ``valid`` or ``test``, from a CRC-32 of the file's name."""
    bucket = zlib.crc32(path.name.encode("utf-8")) % SPLIT_MODULUS
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def stdlib_corpus(max_bytes: int = MAX_BYTES) -> Corpus:
    """The default corpus, character level, with every file ending in a newline."""
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for path in stdlib_files(max_bytes):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts[split_of(path)].append(text if text.endswith("\n") else text + "\n")
    return Corpus(
        f"stdlib:{stdlib_dir()}",
        *("".join(parts[s]) for s in ("train", "valid", "test")),
        default_level="char",
    )
