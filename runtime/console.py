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
    except (MemoryError, ImportError) as exc:
        if not is_out_of_memory(exc):
            raise
        print(f"vae-gen: error: {out_of_memory('starting', exc)}", file=sys.stderr)
        return USER_ERROR
    try:
        return cli_main(argv)
    except MemoryError:  # even reporting an error ran out of memory: a line made before anything was allocated
        print(LAST_RESORT, file=sys.stderr)
        return USER_ERROR


def _address_space_limit_mib() -> int | None:
    """The process's soft address-space limit in MiB, or None when there is none (or no way to read it)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft // 2**20
