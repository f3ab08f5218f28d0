"""A run's images as a folder of PNG files: run record, lock, resume and manifest.

The folder holds NNNNNN.png (in subfolders of FILES_PER_FOLDER files when
the run is larger), the record of the run (so that a resume, or a shard
sharing the folder, is refused if it belongs to another run), a lock per
index range while it is written, and, once a range is complete, its
manifest (index, file, seed per line, and the class asked for when the
model is conditional). With layout "by-class", image i is CLASS/NNNNNN.png.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import CancelEvent, InvalidArgumentError, OutputError, raise_if_cancelled
from ..sampling.generator import Generator, ProgressCallback
from ..sampling.labels import Labels
from ..sampling.latents import block_ranges
from .atomic import atomic_file
from .locks import FolderLock
from .png_writer import PngWriter
from .run_layout import (
    FILES_PER_FOLDER,
    RunSpec,
    manifest_name,
)
from .run_record import check_run_record, holds_another_run, run_record, write_run_record

log = logging.getLogger(__name__)

MODES = ("new", "overwrite", "resume")
RUN_BEING_REPLACED = "another vae-gen process is replacing the run in this folder"


def _finished_pngs(folder: Path) -> Iterator[str]:
    """Relative paths of the finished PNGs in folder and its subfolders (temporaries excluded), streamed."""
    for entry in os.scandir(folder):
        if entry.is_dir() and not entry.name.startswith("."):
            for inner in os.scandir(entry.path):
                if inner.name.endswith(".png") and not inner.name.startswith("."):
                    yield f"{entry.name}/{inner.name}"
        elif entry.name.endswith(".png") and not entry.name.startswith("."):
            yield entry.name


def _in_range(relative: str, path_of: Callable[[int], str], lo: int, hi: int) -> bool:
    """Whether `relative` is where image i of the run lives (`path_of(i)`), for some i in [lo, hi)."""
    stem = relative.rsplit("/", 1)[-1].removesuffix(".png")
    return relative.endswith(".png") and stem.isdigit() and lo <= int(stem) < hi and path_of(int(stem)) == relative


def _first_clash(folder: Path, path_of: Callable[[int], str], lo: int, hi: int) -> str | None:
    """The first PNG in the folder that is one of images [lo, hi) of the run, if any."""
    return next((relative for relative in _finished_pngs(folder) if _in_range(relative, path_of, lo, hi)), None)


def _remove_stale_temporaries(folder: Path, path_of: Callable[[int], str], lo: int, hi: int) -> None:
    """Delete what a killed writer of these targets left: hidden `.NAME.PID.HEX.tmp` files.

    Only temporaries of our own targets: other shards may be writing theirs
    into the same folder right now.
    """
    for pattern in (".*.tmp", "*/.*.tmp"):
        for path in folder.glob(pattern):
            final_name = path.name[1:].rsplit(".", 3)[0]
            relative = final_name if path.parent == folder else f"{path.parent.name}/{final_name}"
            if _in_range(relative, path_of, lo, hi):
                path.unlink(missing_ok=True)


def prepare_folder(folder: Path) -> Path:
    """Create the output folder if needed; OutputError if it cannot hold files."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: the output folder is not writable")
    return folder


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
    cancel: CancelEvent | None = None,
    strict_engine: bool = False,
) -> int:
    """Write images [lo, hi) of the run `spec` as PNGs under `folder`; returns how many were written.

    mode: "new" refuses a folder holding this range's images, "overwrite"
    replaces them, "resume" writes only the missing ones. Each file appears
    complete or not at all. `on_batch(first_index, images)` sees every batch
    written, in order. Setting `cancel` stops the run at the next file
    boundary with `Cancelled`; finish it later with mode="resume". Joining a run
    another engine started warns in one line; strict_engine=True refuses instead.
    """
    hi = spec.count if hi is None else hi
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be {', '.join(MODES)}, got {mode!r}")
    labels = spec.sampling.labels
    path_of = spec.relpath

    folder = prepare_folder(folder)

    # Every writer of a run shares the folder's run lock; replacing the run (overwrite of another run) needs it
    # alone, so two runs never write into one folder at once. The range lock keeps two writers off the same files.
    with FolderLock(folder, "run", shared=True, refusal=RUN_BEING_REPLACED) as run_lock, FolderLock(folder, f"{lo}-{hi}"):
        _claim_range(folder, spec, lo, hi, mode, strict_engine, path_of, run_lock)
        if spec.count > FILES_PER_FOLDER or spec.layout == "by-class":
            for parent in {(folder / path_of(i)).parent for i in _first_of_each_folder(spec, labels, lo, hi)}:
                parent.mkdir(exist_ok=True)

        def missing(first: int, stop: int) -> list[int]:
            indices = range(first, stop)
            if mode != "resume":
                return list(indices)
            return [i for i in indices if not (folder / path_of(i)).exists()]

        written = 0
        try:
            with PngWriter(workers, cancel) as writer:
                for first, batch, todo in _batches_needed(generator, spec, lo, hi, missing, progress):
                    raise_if_cancelled(cancel)
                    writer.write([folder / path_of(i) for i in todo], batch[[i - first for i in todo]])
                    written += len(todo)
                    if on_batch is not None:
                        on_batch(first, batch)
            _write_manifest(folder, spec, labels, lo, hi, path_of)
        except OSError as exc:
            raise OutputError(f"{folder}: writing failed ({exc.strerror or exc}); files already written are complete") from None
    return written


def _claim_range(
    folder: Path, spec: RunSpec, lo: int, hi: int, mode: str, strict_engine: bool, path_of: Callable[[int], str],
    run_lock: FolderLock,
) -> None:
    """Make images [lo, hi) of `spec` this process's to write in `folder`, as `mode` says, or refuse: another run's
    folder is overwritten only whole and alone, a new run never over this run's images; the run record is checked
    (and written first, when the folder has none)."""
    has_pngs = next(_finished_pngs(folder), None) is not None
    if mode == "overwrite" and holds_another_run(folder, spec, has_pngs):
        if (lo, hi) != (0, spec.count):
            raise OutputError(
                f"{folder}: holds another run; overwriting only images {lo}-{hi - 1} of it would leave a folder "
                'of two runs. Overwrite the whole run (no start= or shard=) or use another folder'
            )
        run_lock.make_exclusive(
            "another vae-gen process is writing a run into this folder; wait for it to end before replacing the run"
        )
    write_record = check_run_record(folder, spec, mode, has_pngs, strict_engine)
    if mode == "new" and has_pngs:
        clash = _first_clash(folder, path_of, lo, hi)
        if clash is not None:
            raise OutputError(
                f"{folder}: already holds {clash} of this run; "
                'pass mode="overwrite" to replace its images or mode="resume" to finish the run'
            )
    if mode != "new":
        _remove_stale_temporaries(folder, path_of, lo, hi)
    if write_record:
        write_run_record(folder, run_record(spec))


def _write_manifest(folder: Path, spec: RunSpec, labels: Labels | None, lo: int, hi: int, path_of: Callable[[int], str]) -> None:
    """The range's manifest, one JSON line per image (index, file, seed, class), written whole or not at all."""
    manifest = folder / manifest_name(lo, hi, spec.count)
    with atomic_file(manifest) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for first, stop in block_ranges(lo, hi, spec.batch_size):
            names = labels.names(first, stop) if labels is not None else None
            for i in range(first, stop):
                line: dict[str, object] = {"index": i, "file": path_of(i), "seed": spec.sampling.seed}
                if names is not None:
                    line["class"] = names[i - first]
                handle.write(json.dumps(line) + "\n")


def merge_manifests(folder: Path, count: int, ranges: list[tuple[int, int]]) -> Path:
    """Join the manifests of shards that tile [0, count) into manifest.jsonl, then drop theirs."""
    folder = Path(folder)
    tiles = ranges and ranges[0][0] == 0 and ranges[-1][1] == count
    if not tiles or any(a[1] != b[0] for a, b in itertools.pairwise(ranges)):
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
            ((first, batch),) = generator.stream(spec.sampling.part(blo, bhi), spec.batch_size)
            yield first, batch, todo
        done += bhi - blo
        if progress is not None:
            progress(done, hi - lo)


def _first_of_each_folder(spec: RunSpec, labels: Labels | None, lo: int, hi: int) -> list[int]:
    """An index in each subfolder that images [lo, hi) go to: every FILES_PER_FOLDER-th, or one per class."""
    if spec.layout == "by-class":
        assert labels is not None
        firsts: dict[str, int] = {}
        for first, stop in block_ranges(lo, hi, FILES_PER_FOLDER):
            for offset, name in enumerate(labels.names(first, stop)):
                firsts.setdefault(name, first + offset)
            if len(firsts) == len(labels.classes):
                break
        return list(firsts.values())
    return list(range(lo - lo % FILES_PER_FOLDER, hi, FILES_PER_FOLDER))
