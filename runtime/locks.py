"""A lock file per output range, so two processes never write the same files.

An OS advisory lock (fcntl on POSIX, msvcrt on Windows) on a hidden file in
the output folder: the OS releases it when the process ends, however it
ends, so a killed run never blocks a later one. A run that finishes deletes
its lock file, so a finished folder holds only what the run wrote.

Deleting a lock file races with a process that opened it just before: that
process could then lock the deleted file while a third locks a new one. So
after locking, a process checks that the path still names the file it
locked, and starts again if not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .errors import OutputError


class FolderLock:
    def __init__(self, folder: Path, name: str) -> None:
        self.path = Path(folder) / f".vae-gen-{name}.lock"
        self.handle: BinaryIO | None = None

    def __enter__(self) -> FolderLock:
        while True:
            handle = open(self.path, "a+b")  # held open until __exit__
            try:
                _lock(handle)
            except OSError:
                handle.close()
                raise OutputError(
                    f"{self.path.parent}: another vae-gen process is writing the same images (lock {self.path.name})"
                ) from None
            if _names_this_file(self.path, handle):
                self.handle = handle
                return self
            # The holder deleted it between our open and our lock: lock the file that is there now.
            _unlock(handle)
            handle.close()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.handle is not None:
            if _CAN_DELETE_LOCKED_FILES:
                self.path.unlink(missing_ok=True)  # while still locked: see the module's docstring
            _unlock(self.handle)
            self.handle.close()
            self.handle = None


def _names_this_file(path: Path, handle: BinaryIO) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(handle.fileno()))
    except FileNotFoundError:
        return False


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    # Windows refuses to delete an open file; the lock file stays there.
    _CAN_DELETE_LOCKED_FILES = False

    def _lock(handle: BinaryIO) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: BinaryIO) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _CAN_DELETE_LOCKED_FILES = True

    def _lock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
