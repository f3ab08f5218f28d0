"""A lock file per output range, so two processes never write the same files.

An OS advisory lock (fcntl on POSIX, msvcrt on Windows) on a hidden file in
the output folder: it is released when the process ends, however it ends,
so a killed run never leaves a stale lock behind. The file itself stays:
deleting it on release would let a later process lock a new file while a
waiting one locks the deleted one, and both would write.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError


class FolderLock:
    def __init__(self, folder: Path, name: str):
        self.path = Path(folder) / f".vae-gen-{name}.lock"
        self.handle: BinaryIO | None = None

    def __enter__(self) -> "FolderLock":
        handle = open(self.path, "a+b")
        try:
            _lock(handle)
        except OSError:
            handle.close()
            raise OutputError(
                f"{self.path.parent}: another vae-gen process is writing the same images (lock {self.path.name})"
            ) from None
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            _unlock(self.handle)
            self.handle.close()
            self.handle = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
