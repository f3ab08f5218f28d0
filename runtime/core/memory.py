"""Running out of memory, said in one line.

Under a memory limit (`ulimit -v`, a container's cgroup) each layer fails in
its own words: Python raises MemoryError, the dynamic loader cannot map
onnxruntime's library, onnxruntime's C++ throws std::bad_alloc or its arena
fails to allocate and wraps that in an untyped error, which would otherwise
read as a broken model file. All of them become OutOfMemoryError, naming what
was being done and what helps; the CLI prints it and exits 2.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import OutOfMemoryError
from .exit_codes import USER_ERROR

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

#: Words of the messages that mean an allocation failed, lower case, as the loader, libstdc++ and onnxruntime say them.
OUT_OF_MEMORY_WORDS = (
    "bad_alloc",
    "failed to allocate",
    "cannot allocate memory",
    "failed to map segment",
    "out of memory",
    "bfcarena",
)
ADVICE = "give the process more memory, or use fewer threads (--threads 1) or a smaller --batch-size"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation failure, by its type or by its message."""
    return isinstance(exc, MemoryError) or any(word in str(exc).lower() for word in OUT_OF_MEMORY_WORDS)


#: The part of a failure's message worth showing: what could not be allocated, without onnxruntime's source paths.
CAUSE = re.compile(
    r"failed to allocate memory for requested buffer of size \d+|std::bad_alloc|failed to map segment from shared object"
    r"|cannot allocate memory",
    re.IGNORECASE,
)


def out_of_memory(doing: str, exc: BaseException) -> OutOfMemoryError:
    """The one-line error for an allocation that failed while `doing` ("loading decoder.onnx", say)."""
    found = CAUSE.search(str(exc))
    cause = f" ({found.group(0)})" if found else ""
    return OutOfMemoryError(f"out of memory while {doing}{cause}; {ADVICE}")


@contextmanager
def memory_guard(doing: str) -> Iterator[None]:
    """Turn an allocation failure inside the block into OutOfMemoryError; other errors pass through untouched."""
    try:
        yield
    except OutOfMemoryError:
        raise
    except Exception as exc:  # onnxruntime's errors are untyped: the message says what happened
        if is_out_of_memory(exc):
            raise out_of_memory(doing, exc) from None
        raise


def import_onnxruntime() -> ModuleType:
    """onnxruntime, imported so that running out of memory is OutOfMemoryError. Its C++ prints to the process's
    stderr as it fails ("Schema error: std::bad_alloc"), beside our one line: the first import's output is held
    back, and shown unless the import ran out of memory."""
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            return importlib.import_module("onnxruntime")
        except Exception as exc:
            if is_out_of_memory(exc):
                held.truncate(0)
                raise out_of_memory("loading onnxruntime", exc) from None
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            printed = held.read()
            if printed:
                os.write(2, printed)


class GuardedSession:
    """An onnxruntime session whose `run` reports running out of memory as OutOfMemoryError."""

    def __init__(self, session: InferenceSession, name: str) -> None:
        self.session = session
        self.name = name

    def run(self, output_names: list[str], feed: dict[str, Any]) -> list[Any]:
        with memory_guard(f"running {self.name}"):
            return self.session.run(output_names, feed)  # type: ignore[no-any-return]

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def get_outputs(self) -> Any:
        return self.session.get_outputs()

    def get_providers(self) -> list[str]:
        return self.session.get_providers()  # type: ignore[no-any-return]


def exit_out_of_memory(line: str | bytes) -> NoReturn:
    """Write `line` to stderr and end the process now with exit 2, whatever fails on the way. A normal exit would
    run atexit handlers and tear down onnxruntime and Python's modules, which under the same limit can fail again
    after the line (logging's flush raising MemoryError, glibc aborting in "cannot allocate memory for
    thread-local data"), with another status; Python's own stderr can fail too, hence the raw write. Pass bytes
    encoded in advance when even making the text may fail."""
    try:
        with suppress(BaseException):  # nothing may stop the exit below; the line first, while it still can
            os.write(2, line if isinstance(line, bytes) else (line + "\n").encode())
        with suppress(BaseException):
            sys.stdout.flush()  # what the command printed before
    finally:
        os._exit(USER_ERROR)
