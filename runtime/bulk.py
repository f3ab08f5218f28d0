"""Bulk generation to disk: PNG folders and .npy/.npz files, streamed, shardable, resumable.

A run is defined by its RunSpec (model, seed, count, temperature, batch
size); image i of a run depends only on that and i. A run, or a shard or
tail of it, writes the images of an index range:
- PNG folders hold NNNNNN.png, in subfolders of FILES_PER_FOLDER files when
  the run is larger, a record of the run (for --resume and for shards that
  share the folder), a lock against a second writer of the same range, and,
  once the range is complete, manifest.jsonl (index, file, seed).
- Arrays are written sequentially, header then batches, never held whole:
  memory stays bounded whatever the count. (A memmap would be simpler, but
  its dirty pages count as resident memory and grow with the file.)
PNG encoding runs in worker processes when asked: decoding stays in this
process, so both cores work.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_file
from .errors import Cancelled, InvalidArgumentError, OutputError
from .generator import Generator, ProgressCallback
from .images import ARRAY_SUFFIXES, check_array_path, save_png
from .latents import block_ranges
from .locks import FolderLock

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger(__name__)

FILES_PER_FOLDER = 10_000
RUN_RECORD = "vae-gen-run.json"
#: In-flight PNG batches per worker: enough to keep workers busy, few enough to bound memory.
BATCHES_IN_FLIGHT_PER_WORKER = 2



@dataclass(frozen=True)
class RunSpec:
    """What determines every image of a run."""

    model: str
    decoder_sha256: str
    seed: int
    count: int
    temperature: float
    batch_size: int

    @classmethod
    def for_generator(cls, generator: Generator, seed: int, count: int, temperature: float, batch_size: int) -> "RunSpec":
        return cls(generator.name, generator.card.decoder.sha256, seed, count, float(temperature), batch_size)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N."""
    try:
        index_text, total_text = text.split("/")
        index, total = int(index_text), int(total_text)
    except ValueError:
        raise InvalidArgumentError(f"shard must be K/N with integers 0 <= K < N, got {text!r}") from None
    if not 0 <= index < total:
        raise InvalidArgumentError(f"shard must be K/N with integers 0 <= K < N, got {text!r}")
    return index, total


def shard_range(count: int, index: int, total: int, batch_size: int) -> tuple[int, int]:
    """Shard `index` of `total`: whole batches of the full run, so shards decode exactly its batches."""
    batches = -(-count // batch_size)
    first, last = index * batches // total, (index + 1) * batches // total
    return min(first * batch_size, count), min(last * batch_size, count)


def png_relpath(index: int, count: int) -> str:
    """Where image `index` of a `count`-image run lives inside its folder."""
    name = f"{index:0{max(6, len(str(count - 1)))}d}.png"
    if count <= FILES_PER_FOLDER:
        return name
    folders = (count - 1) // FILES_PER_FOLDER
    return f"{index // FILES_PER_FOLDER:0{max(4, len(str(folders)))}d}/{name}"


def manifest_name(lo: int, hi: int, count: int) -> str:
    return "manifest.jsonl" if (lo, hi) == (0, count) else f"manifest-{lo}-{hi}.jsonl"


# -- PNG folders ----------------------------------------------------------------------


def _write_pngs(paths: list[str], images: np.ndarray, cancel=None) -> None:
    """Save each image to its path, stopping before the next file once `cancel` (any event) is set."""
    for path, image in zip(paths, images):
        raise_if_cancelled(cancel)
        save_png(image, Path(path))


# In a worker process: set by the parent to stop between two files.
_WORKER_STOP = None


def _worker_init(stop) -> None:
    # Ctrl-C reaches the whole process group; the parent decides, and tells
    # the workers through `stop`, so no file is left half-written.
    import signal

    global _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STOP = stop


def _write_pngs_in_worker(paths: list[str], images: np.ndarray) -> None:
    # Once the parent sets the stop event it no longer reads results, so Cancelled here is only a way out.
    _write_pngs(paths, images, _WORKER_STOP)


def raise_if_cancelled(cancel) -> None:
    """The safe points of a run: between files and between batches."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("every file written so far is complete")


class PngWriter:
    """Writes batches of PNGs in this process (workers <= 1) or in worker processes.

    With workers, the parent only waits in short slices, so it notices a
    cancel at once, and then tells the workers to stop before their next file.
    """

    #: Seconds between looks at the cancel event while waiting for a worker.
    POLL_SECONDS = 0.05

    def __init__(self, workers: int, cancel: threading.Event | None = None):
        self.workers = workers
        self.cancel = cancel
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque[Future] = deque()
        if workers > 1:
            # Imported here: multiprocessing costs start-up time that single-image runs should not pay.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # Not fork: forking a process whose onnxruntime threads may hold locks can deadlock the child.
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            self.stop = context.Event()
            self.pool = ProcessPoolExecutor(workers, context, initializer=_worker_init, initargs=(self.stop,))

    def write(self, paths: list[Path], images: np.ndarray) -> None:
        if self.pool is None:
            _write_pngs([str(p) for p in paths], images, self.cancel)
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

    def __enter__(self) -> "PngWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
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
                self.stop.set()  # workers stop before their next file
            # Drop queued batches; a running one ends after its current file.
            self.pool.shutdown(wait=True, cancel_futures=True)


def _finished_pngs(folder: Path) -> Iterator[str]:
    """Relative paths of the finished PNGs in folder and its subfolders (temporaries excluded), streamed."""
    for entry in os.scandir(folder):
        if entry.is_dir() and not entry.name.startswith("."):
            for inner in os.scandir(entry.path):
                if inner.name.endswith(".png") and not inner.name.startswith("."):
                    yield f"{entry.name}/{inner.name}"
        elif entry.name.endswith(".png") and not entry.name.startswith("."):
            yield entry.name


def _in_range(relative: str, count: int, lo: int, hi: int) -> bool:
    """Whether `relative` is where image i of a `count`-image run lives, for some i in [lo, hi)."""
    stem = relative.rsplit("/", 1)[-1].removesuffix(".png")
    return relative.endswith(".png") and stem.isdigit() and lo <= int(stem) < hi and png_relpath(int(stem), count) == relative


def _first_clash(folder: Path, count: int, lo: int, hi: int) -> str | None:
    """The first PNG in the folder that is one of images [lo, hi) of a `count`-image run, if any."""
    return next((relative for relative in _finished_pngs(folder) if _in_range(relative, count, lo, hi)), None)


def _remove_stale_temporaries(folder: Path, count: int, lo: int, hi: int) -> None:
    """Delete what a killed writer of these targets left: hidden `.NAME.PID.HEX.tmp` files.

    Only temporaries of our own targets: other shards may be writing theirs
    into the same folder right now.
    """
    for pattern in (".*.tmp", "*/.*.tmp"):
        for path in folder.glob(pattern):
            final_name = path.name[1:].rsplit(".", 3)[0]
            relative = final_name if path.parent == folder else f"{path.parent.name}/{final_name}"
            if _in_range(relative, count, lo, hi):
                path.unlink(missing_ok=True)


def _check_run_record(folder: Path, spec: RunSpec, mode: str, has_pngs: bool) -> bool:
    """Refuse to mix runs in one folder; True when the record of this run is still to be written."""
    record = folder / RUN_RECORD
    if record.is_file() and mode != "overwrite":
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputError(f"{record}: unreadable run record ({exc}); pass --overwrite to start afresh") from None
        expected = asdict(spec)
        if recorded != expected:
            recorded = recorded if isinstance(recorded, dict) else {}
            differing = sorted(k for k in expected if recorded.get(k) != expected[k])
            raise OutputError(
                f"{folder}: holds a run with a different {', '.join(differing)}; use another folder or --overwrite"
            )
        return False
    if has_pngs and mode == "resume":
        raise OutputError(f"{folder}: holds PNG images but no {RUN_RECORD}, so there is no vae-gen run to resume")
    if has_pngs and mode == "new":
        raise OutputError(f"{folder}: already holds PNG images; pass --overwrite to replace them")
    return True


def generate_to_folder(
    generator: Generator,
    folder: Path,
    spec: RunSpec,
    lo: int = 0,
    hi: int | None = None,
    *,
    mode: str = "new",
    workers: int = 1,
    progress: ProgressCallback | None = None,
    on_batch: Callable[[int, np.ndarray], None] | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Write images [lo, hi) of the run `spec` as PNGs under `folder`; returns how many were written.

    mode: "new" refuses a folder holding this range's images, "overwrite"
    replaces them, "resume" writes only the missing ones. Each file appears
    complete or not at all. `on_batch(first_index, images)` sees every batch
    written, in order. Setting `cancel` stops the run at the next file
    boundary with `Cancelled`; finish it later with mode="resume".
    """
    hi = spec.count if hi is None else hi
    if mode not in ("new", "overwrite", "resume"):
        raise InvalidArgumentError(f"mode must be new, overwrite or resume, got {mode!r}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: the output folder is not writable")

    with FolderLock(folder, f"{lo}-{hi}"):
        has_pngs = next(_finished_pngs(folder), None) is not None
        write_record = _check_run_record(folder, spec, mode, has_pngs)
        if mode == "new" and has_pngs:
            clash = _first_clash(folder, spec.count, lo, hi)
            if clash is not None:
                raise OutputError(
                    f"{folder}: already holds {clash} of this run; "
                    "pass --overwrite to replace its images or --resume to finish the run"
                )
        if mode != "new":
            _remove_stale_temporaries(folder, spec.count, lo, hi)
        if write_record:
            with atomic_file(folder / RUN_RECORD) as tmp:
                tmp.write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")
        if spec.count > FILES_PER_FOLDER:
            for index in range(lo - lo % FILES_PER_FOLDER, hi, FILES_PER_FOLDER):
                (folder / png_relpath(index, spec.count)).parent.mkdir(exist_ok=True)

        def missing(first: int, stop: int) -> list[int]:
            indices = range(first, stop)
            if mode != "resume":
                return list(indices)
            return [i for i in indices if not (folder / png_relpath(i, spec.count)).exists()]

        written = 0
        try:
            with PngWriter(workers, cancel) as writer:
                for first, batch, todo in _batches_needed(generator, spec, lo, hi, missing, progress):
                    raise_if_cancelled(cancel)
                    writer.write([folder / png_relpath(i, spec.count) for i in todo], batch[[i - first for i in todo]])
                    written += len(todo)
                    if on_batch is not None:
                        on_batch(first, batch)
            manifest = folder / manifest_name(lo, hi, spec.count)
            with atomic_file(manifest) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                for i in range(lo, hi):
                    handle.write(json.dumps({"index": i, "file": png_relpath(i, spec.count), "seed": spec.seed}) + "\n")
        except OSError as exc:
            raise OutputError(f"{folder}: writing failed ({exc.strerror or exc}); files already written are complete") from None
    return written


def merge_manifests(folder: Path, count: int, ranges: list[tuple[int, int]]) -> Path:
    """Join the manifests of shards that tile [0, count) into manifest.jsonl, then drop theirs."""
    folder = Path(folder)
    if not ranges or ranges[0][0] != 0 or ranges[-1][1] != count or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:])):
        raise InvalidArgumentError(f"shard ranges {ranges} do not tile 0..{count}")
    parts = [folder / manifest_name(lo, hi, count) for lo, hi in ranges]
    target = folder / manifest_name(0, count, count)
    with atomic_file(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for part in parts:
            out.write(part.read_text(encoding="utf-8"))
    for part in parts:
        if part != target:
            part.unlink()
    return target


def _batches_needed(
    generator: Generator,
    spec: RunSpec,
    lo: int,
    hi: int,
    missing: Callable[[int, int], list[int]],
    progress: ProgressCallback | None,
) -> Iterator[tuple[int, np.ndarray, list[int]]]:
    """(first index, batch, indices to write) for the run's batches over [lo, hi) with work to do.

    A batch whose files all exist (when resuming) is skipped without decoding.
    """
    done = 0
    for blo, bhi in block_ranges(lo, hi, spec.batch_size):
        todo = missing(blo, bhi)
        if todo:
            (first, batch), = generator.iter_batches(
                bhi - blo, spec.seed, temperature=spec.temperature, start=blo, batch_size=spec.batch_size
            )
            yield first, batch, todo
        done += bhi - blo
        if progress is not None:
            progress(done, hi - lo)


# -- arrays -------------------------------------------------------------------------


def generate_to_array(
    generator: Generator,
    path: Path,
    spec: RunSpec,
    lo: int = 0,
    hi: int | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    on_batch: Callable[[int, np.ndarray], None] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write images [lo, hi) as one uint8 array [hi - lo, H, W] to a .npy, or a .npz under the key "images"."""
    hi = spec.count if hi is None else hi
    path = Path(path)
    check_array_path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it")
    shape = (hi - lo, *generator.image_shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    batches = generator.iter_batches(
        hi - lo, spec.seed, temperature=spec.temperature, start=lo, batch_size=spec.batch_size, progress=progress
    )
    try:
        with atomic_file(path) as tmp:
            if path.suffix == ".npy":
                with open(tmp, "wb") as handle:
                    _write_npy(handle, header, batches, on_batch, cancel)
            else:
                import zipfile

                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                    with archive.open("images.npy", "w", force_zip64=True) as handle:
                        _write_npy(handle, header, batches, on_batch, cancel)
    except OSError as exc:
        raise OutputError(f"{path}: writing failed ({exc.strerror or exc}); no partial file was left") from None


def _write_npy(handle, header: dict, batches, on_batch, cancel: threading.Event | None) -> None:
    np.lib.format.write_array_header_1_0(handle, header)
    for first, batch in batches:
        raise_if_cancelled(cancel)
        handle.write(np.ascontiguousarray(batch).tobytes())
        if on_batch is not None:
            on_batch(first, batch)


def is_array_path(path: Path) -> bool:
    return Path(path).suffix in ARRAY_SUFFIXES


__all__ = [
    "FILES_PER_FOLDER", "RunSpec", "generate_to_array", "generate_to_folder",
    "manifest_name", "merge_manifests", "parse_shard", "png_relpath", "shard_range",
]  # fmt: skip
