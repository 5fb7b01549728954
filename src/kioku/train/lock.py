"""One writer per run folder: a lock file holding the writer's process id.

``kioku train`` takes the lock before it writes anything into ``--out`` and drops it
when it stops, so two runs into one folder cannot interleave their logs and
checkpoints. A lock whose process is gone (killed, machine restarted) is stale: the
next run takes it over. The lock file is created complete in one step (a hard link
of a written temporary file), so a reader never sees it empty.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from types import TracebackType

LOCK_NAME = "kioku.lock"


class RunLockedError(FileExistsError):
    """The run folder is held by another live process; the message names it."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> tuple[int, str] | None:
    """``(pid, host)`` written in the lock file, or ``None`` when it is unreadable."""
    try:
        pid, host = path.read_text(encoding="utf-8").split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


class RunLock:
    """The lock of run folder ``folder`` (``folder/kioku.lock``), as a context manager.

    :meth:`acquire` creates the folder if needed; :meth:`release` removes the lock and,
    if the folder was created by :meth:`acquire` and is empty, the folder too (a run
    refused before its first write leaves nothing behind).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False
        self._created_folder = False

    def acquire(self) -> RunLock:
        """Take the lock; raises ``RunLockedError`` if a live process holds it and
        ``NotADirectoryError`` if ``folder`` is a file."""
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"{self.folder}: expected a run folder, found a file")
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._created_folder = True
        me = f"{os.getpid()} {socket.gethostname()}\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{LOCK_NAME}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(me)
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # fails if the lock exists: atomic test-and-set
                    self.held = True
                    return self
                except FileExistsError:
                    holder = _holder(self.path)
                    if holder is not None and (
                        holder[1] != socket.gethostname() or _alive(holder[0])
                    ):
                        pid, host = holder
                        raise RunLockedError(
                            f"{self.folder}: in use by another kioku run (process {pid} on "
                            f"{host}, lock file {self.path.name}); wait for it to finish or "
                            "choose another --out"
                        ) from None
                    # stale (its process is gone) or unreadable: take it over
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
            raise RunLockedError(f"{self.path}: could not take the lock (contended)")
        finally:
            os.unlink(tmp)
            if not self.held:
                self._remove_empty_folder()

    def release(self) -> None:
        """Drop the lock (only if this object holds it)."""
        if self.held:
            holder = _holder(self.path)
            if holder is not None and holder[0] == os.getpid():
                self.path.unlink()
            self.held = False
        self._remove_empty_folder()

    def _remove_empty_folder(self) -> None:
        if self._created_folder:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # not empty: the run wrote something

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
