"""The `vae-gen` command's entry point: the CLI, imported so that running out of memory while importing it
(numpy, onnxruntime's library) is one line and exit 2, as it is once the CLI runs, not a traceback."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .core.memory import ADVICE, exit_out_of_memory, is_out_of_memory, out_of_memory

#: Below this address-space limit (`ulimit -v`) nothing can be run, so it is refused up front in one line: under
#: 96 MiB numpy's BLAS cannot even load (it ends the process with its own message); up to about 110 MiB CPython
#: itself fails at random places (argparse's SystemError, "lost sys.stderr"); from about 145 to 165 MiB,
#: depending on the heap's layout, onnxruntime's library can abort (SIGABRT, SIGSEGV) in its C++ initialization
#: while it loads, before Python can see a failure. The smallest limit that runs a model here is 170 MiB
#: (fashion-mnist-dense2; docs/performance.md), so nothing that could work is refused.
MIN_ADDRESS_SPACE_MIB = 168
#: Encoded now, while memory is there: the line that is written when even reporting an error ran out of memory.
LAST_RESORT = f"vae-gen: error: out of memory; {ADVICE}\n".encode()


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's OpenBLAS allocates a buffer per core when it loads (and exits the process if it cannot); the runtime
    # does no linear algebra worth threads, so one buffer keeps small machines' memory for onnxruntime.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    limit = _address_space_limit_mib()
    if limit is not None and limit < MIN_ADDRESS_SPACE_MIB:
        exit_out_of_memory(f"vae-gen: error: out of memory: the address space limit (ulimit -v) is {limit} MiB, and "
                           f"vae-gen needs at least {MIN_ADDRESS_SPACE_MIB} MiB to start")  # fmt: skip
    try:
        from .cli.commands import main as cli_main
    except (MemoryError, ImportError, SystemError) as exc:
        if not (is_out_of_memory(exc) or _failed_allocation(exc, limit)):
            raise
        exit_out_of_memory(f"vae-gen: error: {out_of_memory('starting', exc)}")
    try:
        return cli_main(argv)
    except (MemoryError, SystemError) as exc:  # even reporting an error ran out of memory: a line made up front
        if not (isinstance(exc, MemoryError) or _failed_allocation(exc, limit)):
            raise
        exit_out_of_memory(LAST_RESORT)


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
