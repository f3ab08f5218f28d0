"""Writing batches of PNG files, in this process or in worker processes.

Decoding stays in the calling process; with workers, PNG encoding and file
creation run beside it, so both cores work. Every file is written whole
under a temporary name and renamed (images.save_png), and a cancel stops
the writers between two files, never inside one.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CancelEvent, raise_if_cancelled
from .images import save_png

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

#: In-flight PNG batches per worker: enough to keep workers busy, few enough to bound memory.
BATCHES_IN_FLIGHT_PER_WORKER = 2


def write_pngs(paths: list[str], images: np.ndarray, cancel: CancelEvent | None = None) -> None:
    """Save each image to its path, stopping before the next file once `cancel` is set."""
    for path, image in zip(paths, images, strict=True):
        raise_if_cancelled(cancel)
        save_png(image, Path(path))


#: How often a worker looks whether the run's process still exists.
PARENT_CHECK_SECONDS = 0.5

# In a worker process: set by the parent to stop between two files.
_WORKER_STOP: CancelEvent | None = None


def _worker_init(stop: CancelEvent, parent: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides, and tells
    # the workers through `stop`, so no file is left half-written.
    import signal

    global _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STOP = stop
    if os.name == "posix":
        threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True).start()


def _exit_when_gone(parent: int) -> None:
    """End this worker once the process that started the run is gone (kill -9 gives it no chance to say so):
    a worker's own parent is the forkserver, so the run's process is watched by its pid."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # it exists, under another user: not ours to judge
            pass


def _write_pngs_in_worker(paths: list[str], images: np.ndarray) -> None:
    # Once the parent sets the stop event it no longer reads results, so Cancelled here is only a way out.
    write_pngs(paths, images, _WORKER_STOP)


class PngWriter:
    """Writes batches of PNGs in this process (workers <= 1) or in worker processes.

    With workers, the parent only waits in short slices, so it notices a
    cancel at once, and then tells the workers to stop before their next file.
    """

    #: Seconds between looks at the cancel event while waiting for a worker.
    POLL_SECONDS = 0.05

    def __init__(self, workers: int, cancel: CancelEvent | None = None) -> None:
        self.workers = workers
        self.cancel = cancel
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque[Future[None]] = deque()
        if workers > 1:
            # Imported here: multiprocessing costs start-up time that single-image runs should not pay.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # Not fork: forking a process whose onnxruntime threads may hold locks can deadlock the child.
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            self.stop: CancelEvent = context.Event()
            self.pool = ProcessPoolExecutor(workers, context, initializer=_worker_init, initargs=(self.stop, os.getpid()))
        else:
            self.stop = threading.Event()

    def write(self, paths: list[Path], images: np.ndarray) -> None:
        if self.pool is None:
            write_pngs([str(p) for p in paths], images, self.cancel)
            return
        while len(self.pending) >= BATCHES_IN_FLIGHT_PER_WORKER * self.workers:
            self._finish_oldest()
        self.pending.append(self.pool.submit(_write_pngs_in_worker, [str(p) for p in paths], images))

    def _finish_oldest(self) -> None:
        from concurrent.futures import wait

        oldest = self.pending[0]
        while not wait([oldest], timeout=self.POLL_SECONDS).done:
            raise_if_cancelled(self.cancel)
        self.pending.popleft().result()  # re-raises a worker's error (a full disk, say)
        raise_if_cancelled(self.cancel)

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.pool is None:
            return
        failed = kind is not None
        try:
            while not failed and self.pending:
                self._finish_oldest()
        except BaseException:
            failed = True
            raise
        finally:
            if failed:
                self.stop.set()  # type: ignore[attr-defined]  # workers stop before their next file
            # Drop queued batches; a running one ends after its current file.
            self.pool.shutdown(wait=True, cancel_futures=True)
