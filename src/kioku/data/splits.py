"""Which file feeds which split: a data folder's files found by their usual names, or
one file split into three.

A folder's file feeds a split when a word part of its name (the name cut at every
character that is not a letter or a digit) is ``train``, ``valid``/``validation``/``dev``
(the validation split) or ``test``, whatever comes before or after: ``ptb.train.txt``,
``en_gum-ud-dev.conllu``, ``train.tsv``, ``valid.txt``. Split files are never
concatenated. Documentation (``README*``, ``LICENSE*``, ``*.md``, ...), files of another
kind than the task reads, sub-folders and files named for no split beside split files
are ignored, each named with the reason. A folder is refused, in one line naming what
it holds, when a split has two files, when it has split files but no train file (or a
train file without a valid or test one), or when it holds several files and none is
named for a split. A folder holding one data file, or a file, is split in three:
:func:`shuffled_split` for examples (stratified by label when there are labels),
:func:`ordered_split` for series, whose valid and test splits are the contiguous tail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "valid", "test")
SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "dev": "valid",
    "test": "test",
}
"""Word parts of a file name and the split they name."""

DOCUMENTATION = re.compile(
    r"^(readme|license|licence|copying|notice|authors|changelog|changes|citation|stats)"
    r"([._-].*)?$|\.(md|rst|pdf|html?|zip|gz|tgz|bz2|xz)$",
    re.I,
)
"""Names of files that describe the data rather than hold it."""

FRACTIONS = (0.1, 0.1)
"""The shares of valid and test when one file is split in three (80/10/10)."""


@dataclass
class SplitFiles:
    """Where each split comes from: ``files`` (split -> absolute path) for a folder of
    split files, or ``single``, the one file split in three; ``ignored`` (absolute path
    -> reason) what a folder held besides; ``source`` the ``--data`` path, absolute."""

    source: Path
    files: dict[str, Path] = field(default_factory=dict)
    single: Path | None = None
    ignored: dict[Path, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able record of the paths (kept in a run's checkpoints)."""
        record: dict = {"source": str(self.source)}
        if self.single is not None:
            record["single"] = str(self.single)
        else:
            record["files"] = {s: str(p) for s, p in self.files.items()}
        return record

    def describe(
        self, counts: dict[str, str], how: str = "", shares: tuple = ("80%", "10%", "10%")
    ) -> list[str]:
        """Lines saying which file fed which split, each with its ``counts`` (split ->
        text such as ``"1,000 lines"``); ``how`` says how a single file was split, into
        ``shares`` of train, valid and test."""
        lines = [f"data: {self.source}"]
        for split in SPLITS:
            count = f" ({counts[split]})" if split in counts else ""
            if self.single is not None:
                where = self._name(self.single)
                share = dict(zip(SPLITS, shares))[split]
                lines.append(f"  {split:<5} <- {share} of {where}{count}")
            else:
                lines.append(f"  {split:<5} <- {self._name(self.files[split])}{count}")
        if self.single is not None and how:
            lines.append(f"  ({how})")
        if self.ignored:
            shown = ", ".join(f"{self._name(p)} ({why})" for p, why in self.ignored.items())
            lines.append(f"  ignored: {shown}")
        return lines

    def _name(self, path: Path) -> str:
        return path.name if self.source in (path, path.parent) else str(path)


def find_splits(path: str | os.PathLike, suffixes: Sequence[str] | None = None) -> SplitFiles:
    """The split files of the folder ``path`` (see the module docstring), or ``path``
    itself, a file, as ``single``. ``suffixes`` (``(".conllu",)``) are the endings of
    the files the task reads (``None``: any). ``FileNotFoundError`` for a missing path,
    ``ValueError`` (one line naming what was found) for a folder that cannot be read as
    meant."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    path = path.resolve()
    if not path.is_dir():
        return SplitFiles(path, single=path)
    found: dict[str, list[Path]] = {s: [] for s in SPLITS}
    others: list[Path] = []
    ignored: dict[Path, str] = {}
    kinds = "/".join(suffixes) if suffixes else ""
    for entry in sorted(path.iterdir()):
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir():
            ignored[entry] = "a folder"
            continue
        if DOCUMENTATION.search(name):
            ignored[entry] = "documentation"
            continue
        if suffixes and not name.lower().endswith(tuple(s.lower() for s in suffixes)):
            ignored[entry] = f"not a {kinds} file"
            continue
        named = {SPLIT_WORDS[p] for p in re.split(r"[^a-z0-9]+", name.lower()) if p in SPLIT_WORDS}
        if len(named) > 1:
            raise ValueError(
                f"{path}: {name} names {' and '.join(sorted(named))}; expected one split per file"
            )
        if named:
            found[named.pop()].append(entry)
        else:
            others.append(entry)
    for split, files in found.items():
        if len(files) > 1:
            names = ", ".join(p.name for p in files)
            raise ValueError(
                f"{path}: {len(files)} {split} files ({names}); expected one file per split"
            )
    named = {s: files[0] for s, files in found.items() if files}
    if named:
        missing = [s for s in SPLITS if s not in named]
        if missing:
            held = ", ".join(f"{s} {p.name}" for s, p in named.items())
            want = " and ".join("valid (or dev)" if s == "valid" else s for s in missing)
            raise ValueError(
                f"{path}: found {held} but no {want} file; name one so, or give the train "
                "file alone to split it in three"
            )
        for other in others:
            ignored[other] = "named for no split"
        return SplitFiles(path, files=named, ignored=ignored)
    if len(others) == 1:
        return SplitFiles(path, single=others[0], ignored=ignored)
    if not others:
        held = ", ".join(p.name for p in ignored) or "nothing"
        what = f"{kinds} " if kinds else ""
        raise ValueError(f"{path}: no {what}data file found (holds {held})")
    names = ", ".join(p.name for p in others[:6]) + (", ..." if len(others) > 6 else "")
    raise ValueError(
        f"{path}: no train file among {len(others)} files ({names}); name them train, "
        "valid (or dev) and test, or give one file to split in three"
    )


def split_rng(seed: int) -> np.random.Generator:
    """The generator that shuffles a file before it is split: the run's ``seed``, on a
    stream of its own (initialisation and batches draw from others)."""
    return np.random.default_rng([int(seed), 0x5EED])


def shuffled_split(
    count: int, seed: int, labels: Sequence | None = None, fractions: tuple = FRACTIONS
) -> dict[str, np.ndarray]:
    """Indices ``(n_split,)`` of ``count`` items for train, valid and test, shuffled with
    ``seed`` (same seed, same split). With ``labels`` (one per item) each label's items
    are shared out on their own, so every split holds every label in proportion (a label
    of 3 items or more has at least one in valid and one in test). Each split's indices
    are in file order."""
    rng = split_rng(seed)
    keys = np.zeros(count, np.int64) if labels is None else _label_ids(labels)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for key in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == key))
        n = members.size
        n_valid, n_test = (int(round(n * f)) for f in fractions)
        if n >= 3:
            n_valid, n_test = max(n_valid, 1), max(n_test, 1)
        parts["valid"].append(members[:n_valid])
        parts["test"].append(members[n_valid : n_valid + n_test])
        parts["train"].append(members[n_valid + n_test :])
    return {s: np.sort(np.concatenate(parts[s])) if parts[s] else np.zeros(0, np.int64)
            for s in SPLITS}  # fmt: skip


def ordered_split(count: int, fractions: tuple = FRACTIONS) -> dict[str, slice]:
    """Slices of ``count`` steps of a series: train first, then valid, then test (the
    contiguous tail), time order kept."""
    cut_valid = int(round(count * (1 - fractions[0] - fractions[1])))
    cut_test = int(round(count * (1 - fractions[1])))
    return {
        "train": slice(0, cut_valid),
        "valid": slice(cut_valid, cut_test),
        "test": slice(cut_test, count),
    }


def _label_ids(labels: Sequence) -> np.ndarray:
    index: dict = {}
    return np.array([index.setdefault(label, len(index)) for label in labels], np.int64)
