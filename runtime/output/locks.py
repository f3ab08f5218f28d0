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

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ..errors import OutputError


class FolderLock:
    """An exclusive lock, or with shared=True one that many holders share until one asks for it alone
    (`make_exclusive`): the processes writing parts of one run share the folder's run lock; replacing the run
    needs it alone."""

    def __init__(self, folder: Path, name: str, shared: bool = False, refusal: str | None = None) -> None:
        self.path = Path(folder) / f".vae-gen-{name}.lock"
        self.shared = shared
        self.refusal = refusal or "another vae-gen process is writing the same images"
        self.handle: BinaryIO | None = None

    def __enter__(self) -> FolderLock:
        for _ in range(50):  # a last holder deletes the file under an exclusive lock for an instant: try again
            handle = open(self.path, "a+b")  # held open until __exit__
            try:
                _lock(handle, self.shared)
            except OSError:
                handle.close()
                if self.shared:
                    time.sleep(0.01)
                    continue
                raise OutputError(f"{self.path.parent}: {self.refusal} (lock {self.path.name})") from None
            if _names_this_file(self.path, handle):
                self.handle = handle
                return self
            # The holder deleted it between our open and our lock: lock the file that is there now.
            _unlock(handle)
            handle.close()
        raise OutputError(f"{self.path.parent}: {self.refusal} (lock {self.path.name})")

    def make_exclusive(self, refusal: str) -> None:
        """Hold the lock alone from now on, or OutputError(refusal) if another process holds it too."""
        assert self.handle is not None
        try:
            _lock(self.handle, shared=False)
        except OSError:
            raise OutputError(f"{self.path.parent}: {refusal}") from None
        self.shared = False

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.handle is not None:
            last = not self.shared
            if self.shared:  # the last of the sharers deletes the file: it is the one that can hold it alone
                try:
                    _lock(self.handle, shared=False)
                    last = True
                except OSError:
                    last = False
            if _CAN_DELETE_LOCKED_FILES and last:
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

    def _lock(handle: BinaryIO, shared: bool = False) -> None:
        if shared:  # msvcrt has no shared locks: sharers do not exclude each other, nor an exclusive holder
            return
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: BinaryIO) -> None:
        handle.seek(0)
        with contextlib.suppress(OSError):  # a shared "lock", never taken
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _CAN_DELETE_LOCKED_FILES = True

    def _lock(handle: BinaryIO, shared: bool = False) -> None:
        fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)

    def _unlock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
