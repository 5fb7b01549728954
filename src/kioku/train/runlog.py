"""The JSON-lines log of a run: one object per evaluation, appended and flushed.

Every line is strict JSON: a non-finite figure is written as ``null`` and named under
``"nonfinite"`` (:mod:`kioku.data.strict_json`)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..data import strict_json
from ..data.atomic import write_text_atomic


class RunLog:
    """Appends records to ``path`` (``log.jsonl`` in the run folder).

    A ``path`` that is a symbolic link is refused (``ValueError`` naming it), never
    written through: a run folder's log is the run's own file.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None

    def _refuse_link(self) -> None:
        if self.path is not None and self.path.is_symlink():
            raise ValueError(
                f"{self.path}: expected the run's own log file, found a symbolic link to "
                f"{os.readlink(self.path)}; remove the link"
            )

    def write(self, record: dict) -> None:
        """Append one record as a JSON line, flushed to disk."""
        if self.path is None:
            return
        self._refuse_link()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a link made between the check above and here is refused too
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as error:
            if self.path.is_symlink():
                self._refuse_link()
            raise error
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(strict_json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (written after the checkpoint a run resumes from),
        so a resumed run's log reads like the uninterrupted run's."""
        if self.path is None:
            return
        self._refuse_link()
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the interruption
            if not isinstance(record, dict) or record.get("step", 0) <= step:
                kept.append(line)
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def read(self) -> list[dict]:
        """All records, in order. A last line cut short (a run killed mid-write) is left
        out with a warning; a bad line before it is a ``ValueError`` naming the file and
        the line."""
        if self.path is None or not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, found {type(record).__name__}")
            except ValueError as error:
                if number == len(lines):
                    warnings.warn(
                        f"{self.path}: line {number} is cut short (not JSON); read the "
                        f"{len(records)} records before it",
                        stacklevel=2,
                    )
                    break
                raise ValueError(
                    f"{self.path}: line {number}: not a JSON record ({error})"
                ) from None
            records.append(record)
        return records
