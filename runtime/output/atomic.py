"""All-or-nothing writes: build under a temporary name beside the target, then rename.

A crash, Ctrl-C or full disk leaves at most a hidden temporary entry, never a
half-written file under its real name, and never damages what was there.
Temporary entries get the normal permissions (umask applies), unlike
tempfile's private 0600/0700 ones, so what we publish is readable as usual.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path


def _temporary_name(final: Path) -> Path:
    return final.parent / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def remove_stale_temporaries(final: Path) -> int:
    """Delete the temporaries of `final` that a killed writer left (`.NAME.PID.HEX.tmp` whose PID is no longer a
    running process); a live writer's stay. Returns how many were removed."""
    final = Path(final)
    removed = 0
    for path in final.parent.glob(f".{glob_escape(final.name)}.*.tmp"):
        pid_text = path.name[len(final.name) + 2 :].split(".")[0]
        if pid_text.isdigit() and not _is_running(int(pid_text)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _is_running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows, signal 0 is CTRL_C_EVENT: never probe with it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or a platform without signal 0: leave it be
        return True
    return True


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield an empty temporary file beside `final`; rename it onto `final` only on success."""
    final = Path(final)
    tmp = _temporary_name(final)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(final: Path, data: bytes) -> None:
    """`final` holds `data` or is untouched: one create, one write loop, one rename.

    The same guarantee as `atomic_file`, with the fewest system calls, for
    writing many small files (a PNG of a 28x28 image is under 1 kB).
    """
    final = Path(final)
    tmp = _temporary_name(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `final` (which must not exist); rename it on success."""
    final = Path(final)
    tmp = _temporary_name(final)
    os.mkdir(tmp, 0o777)
    try:
        yield tmp
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
