"""The `vae-gen` command's entry point: the CLI, imported so that running out of memory while importing it
(numpy, onnxruntime's library) is one line and exit 2, as it is once the CLI runs, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .exit_codes import USER_ERROR
from .memory import ADVICE, is_out_of_memory, out_of_memory

#: Below this address-space limit (`ulimit -v`) numpy's BLAS cannot even load, and it ends the process itself
#: with status 1 and its own message; the smallest that runs a model is about 170 MiB (docs/performance.md).
MIN_ADDRESS_SPACE_MIB = 96
LAST_RESORT = f"vae-gen: error: out of memory; {ADVICE}"


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's OpenBLAS allocates a buffer per core when it loads (and exits the process if it cannot); the runtime
    # does no linear algebra worth threads, so one buffer keeps small machines' memory for onnxruntime.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    limit = _address_space_limit_mib()
    if limit is not None and limit < MIN_ADDRESS_SPACE_MIB:
        print(f"vae-gen: error: out of memory: the address space limit (ulimit -v) is {limit} MiB, and vae-gen needs "
              f"at least {MIN_ADDRESS_SPACE_MIB} MiB to start", file=sys.stderr)  # fmt: skip
        return USER_ERROR
    try:
        from .cli import main as cli_main
    except (MemoryError, ImportError, SystemError) as exc:
        if not (is_out_of_memory(exc) or _failed_allocation(exc, limit)):
            raise
        print(f"vae-gen: error: {out_of_memory('starting', exc)}", file=sys.stderr)
        return USER_ERROR
    try:
        return cli_main(argv)
    except (MemoryError, SystemError) as exc:  # even reporting an error ran out of memory: a line made up front
        if not (isinstance(exc, MemoryError) or _failed_allocation(exc, limit)):
            raise
        print(LAST_RESORT, file=sys.stderr)
        sys.stderr.flush()
        os._exit(USER_ERROR)  # as the CLI does: a normal exit's teardown can abort under the same limit


def _failed_allocation(exc: BaseException, limit: int | None) -> bool:
    """Whether `exc` is CPython's SystemError for a failed allocation: a C function that could not allocate
    its MemoryError either ("error return without exception set", seen in argparse near 100 MiB). Under an
    address-space limit that is what it means; without one it is an interpreter bug, and shown as one."""
    if not isinstance(exc, SystemError):
        return False
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, MemoryError):
            return True
        chain = chain.__cause__ or chain.__context__
    return limit is not None


def _address_space_limit_mib() -> int | None:
    """The process's soft address-space limit in MiB, or None when there is none (or no way to read it)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft // 2**20
