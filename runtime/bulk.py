"""Bulk generation to disk: one call that plans and writes a run, as `vae-gen sample` does.

    >>> from vae_gen.bulk import generate_run
    >>> generate_run(gen, "out/", 100_000, seed=0)                 # PNG folder, resumable
    >>> generate_run(gen, "out/", 100_000, seed=0, mode="resume")  # after a crash or a cancel
    >>> generate_run(gen, "images.npy", 10_000, seed=0)            # one uint8 array

`vae-gen sample` is a thin layer over `generate_run`: the same arguments
give the same files. The pieces it plans with are public too, one concept
per module: run_layout (the run spec, its index range, shards and file
names), png_folder (PNG folders with run record, lock, resume and
manifest), png_writer (worker processes) and array_file (.npy/.npz).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core.checks import check_callbacks, check_integer, check_path, shown
from .errors import CancelEvent, InvalidArgumentError
from .output.array_file import generate_to_array, is_array_path
from .output.images import (
    ARRAY_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_GRID_IMAGES,
    MAX_GRID_SCALE,
    check_grid_size,
    check_picture_path,
    rows_by_class,
    save_grid,
)
from .output.png_folder import MODES, generate_to_folder, merge_manifests
from .output.run_layout import (
    FILES_PER_FOLDER,
    RunSpec,
    manifest_name,
    parse_shard,
    png_relpath,
    run_range,
    shard_range,
)
from .sampling.generator import Generator, ProgressCallback
from .sampling.labels import LabelSpec
from .sampling.request import MAX_IMAGES

log = logging.getLogger(__name__)

#: Below this many PNGs, starting worker processes costs more than it saves.
PARALLEL_PNG_MIN_IMAGES = 2000
#: PNG-encoding processes at most: each is a Python process of about 95 MB.
MAX_WORKERS = 64


@dataclass(frozen=True)
class RunResult:
    """What one `generate_run` call did: the run, the images [lo, hi) it covered, the files it wrote."""

    spec: RunSpec
    lo: int
    hi: int
    #: PNG files written (fewer than hi - lo when resuming), or images in the array file.
    written: int


def generate_run(
    generator: Generator,
    out: str | Path | None,
    count: int,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    label: LabelSpec | None = None,
    guidance: float = 0.0,
    start: int = 0,
    shard: str | tuple[int, int] | None = None,
    batch_size: int | None = None,
    layout: str = "flat",
    mode: str = "new",
    workers: int | None = None,
    grid: str | Path | None = None,
    grid_scale: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelEvent | None = None,
    strict_engine: bool = False,
) -> RunResult:
    """Write images of a `count`-image run of (model, seed, temperature) to `out` and/or a contact sheet.

    out: a folder (PNG files), a .npy or .npz file, or None (grid only).
    label: a conditional model's class for the whole run: a name or index,
        "all" (image i of class i mod K: balanced) or a {name: weight} blend;
        recorded with the run, in each manifest line, and in a .npz's "labels".
    guidance: a conditional model's class guidance, >= 0 (vae_gen.sampling.guidance),
        recorded with the run; 0 decodes the model's own output.
    layout: "flat" (NNNNNN.png) or "by-class" (CLASS/NNNNNN.png: a labelled dataset that
        keras.utils.image_dataset_from_directory and `vae-gen train --data` read back).
    start / shard ("K/N" or (K, N)): write only images start..count-1, or
        only shard K of N (whole decode batches of the run); the files are
        byte for byte those a full run writes at those indices.
    batch_size: images per decoder call (None: DEFAULT_BATCH_SIZE); the same across a run's shards and resumes.
    mode: "new" (refuse existing images), "overwrite", or "resume" (PNG
        folders: write only what is missing).
    workers: processes encoding PNGs; None: one per core from
        PARALLEL_PNG_MIN_IMAGES images on, else 0 (in this process).
    grid: also write the images as one contact-sheet PNG, scaled by grid_scale.
    cancel: an event; once set, the run stops at its next file boundary with
        `Cancelled`, every file written is complete, and mode="resume" finishes it.
    strict_engine: a PNG run another engine started (CPU features, onnxruntime, numpy:
        vae_gen.model.engine) is refused instead of joined with a warning. Every argument is checked first.
    """
    checked = _checked_run(generator, out, count, seed, temperature, label, guidance, start, shard, batch_size, layout,
                           mode, workers, grid, grid_scale, progress, cancel)  # fmt: skip
    kept: list[np.ndarray] = []
    # A resumed run skips the batches already on disk, so its grid is generated on its own afterwards.
    keep: Callable[[int, np.ndarray], None] | None = None
    if checked.grid is not None and mode != "resume":
        keep = lambda first, batch: kept.append(batch)  # noqa: E731
    written = _write(generator, checked, mode, keep, progress, cancel, strict_engine)
    spec, lo, hi = checked.spec, checked.lo, checked.hi
    if checked.grid is not None:
        if checked.out is None or mode == "resume":  # only a grid's run reports progress from here
            watching = (progress, cancel) if checked.out is None else (None, None)
            kept = [batch for _, batch in generator.stream(spec.sampling.part(lo, hi), spec.batch_size, *watching)]
        _write_grid(generator, spec, np.concatenate(kept), lo, checked.grid, checked.grid_scale)
    return RunResult(spec, lo, hi, written)


def _write(
    generator: Generator, checked: _CheckedRun, mode: str, keep: Callable[[int, np.ndarray], None] | None,
    progress: ProgressCallback | None, cancel: CancelEvent | None, strict_engine: bool,
) -> int:  # fmt: skip
    """Write the checked run's images to its array file or PNG folder (none without `out`); returns how many."""
    spec, lo, hi = checked.spec, checked.lo, checked.hi
    if checked.out is None:
        return 0
    if checked.to_array:
        generate_to_array(generator, checked.out, spec, lo, hi, mode=mode, progress=progress, on_batch=keep, cancel=cancel)
        return hi - lo
    workers = checked.workers
    if workers is None:
        workers = (os.cpu_count() or 1) if hi - lo >= PARALLEL_PNG_MIN_IMAGES else 0
    written = generate_to_folder(
        generator, checked.out, spec, lo, hi,
        mode=mode, workers=workers, progress=progress, on_batch=keep, cancel=cancel, strict_engine=strict_engine,
    )  # fmt: skip
    log.info("wrote %d images to %s", written, checked.out)
    return written


@dataclass(frozen=True)
class _CheckedRun:
    """generate_run's arguments, checked: where to write, the run's spec and the range of images to write."""

    out: Path | None
    to_array: bool
    grid: Path | None
    grid_scale: int
    workers: int | None
    spec: RunSpec
    lo: int
    hi: int


def _checked_run(
    generator: Generator, out: str | Path | None, count: int, seed: int, temperature: float, label: LabelSpec | None,
    guidance: float, start: int, shard: str | tuple[int, int] | None, batch_size: int | None, layout: str, mode: str,
    workers: int | None, grid: str | Path | None, grid_scale: int, progress: ProgressCallback | None,
    cancel: CancelEvent | None,
) -> _CheckedRun:
    """Every argument of generate_run checked, in one place, before anything is written."""
    if out is None and grid is None:
        raise InvalidArgumentError("nothing to write: give out= (a folder, .npy or .npz) and/or grid= (a .png file)")
    out = None if out is None else check_path(out, "out=")
    if out is not None and out.suffix.lower() in ARRAY_SUFFIXES and out.suffix not in ARRAY_SUFFIXES:
        raise InvalidArgumentError(f"out={shown(str(out))}: an array file ends in .npy or .npz, in lowercase")
    grid = None if grid is None else check_path(grid, "grid=")
    grid_scale = check_integer(grid_scale, 1, MAX_GRID_SCALE, "grid_scale=")
    start = check_integer(start, 0, MAX_IMAGES, "start=")
    workers = None if workers is None else check_integer(workers, 0, MAX_WORKERS, "workers=")
    check_callbacks(progress, cancel)
    spec = RunSpec.for_generator(generator, seed, count, temperature, batch_size, label, layout, guidance)
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be {', '.join(MODES)}, got {mode!r}")
    lo, hi = run_range(spec.count, spec.batch_size, start, shard)
    if grid is not None:
        if hi - lo > MAX_GRID_IMAGES:
            raise InvalidArgumentError(f"grid= holds at most {MAX_GRID_IMAGES} images, got {hi - lo}")
        check_grid_size(hi - lo, generator.card.image_shape, grid_scale)
        check_picture_path(Path(grid))
    to_array = out is not None and is_array_path(out)
    if out is not None and not to_array and Path(out).suffix.lower() in IMAGE_SUFFIXES:
        raise InvalidArgumentError(f"out={str(out)!r}: PNG output is a folder of files; use grid= for one picture, or .npy/.npz")
    if layout != "flat" and (out is None or to_array):
        raise InvalidArgumentError(f'layout="{layout}" arranges PNG folders; out= must be a folder')
    if to_array and mode == "resume":
        raise InvalidArgumentError('mode="resume" finishes PNG folders; an array file is written whole or not at all')
    return _CheckedRun(None if out is None else Path(out), to_array, None if grid is None else Path(grid), grid_scale,
                       workers, spec, lo, hi)  # fmt: skip


def _write_grid(generator: Generator, spec: RunSpec, images: np.ndarray, lo: int, grid: Path, scale: int) -> None:
    """The run's images as one contact sheet; a run of every class ("all") gets one row per class."""
    columns = None
    labels = spec.sampling.labels
    if labels is not None and labels.cycles:  # "all": one row per class
        images, columns = rows_by_class(images, lo, len(labels.classes))
    save_grid(images, grid, scale=scale, columns=columns)
    log.info("wrote a grid of %d images to %s", len(images), grid)


__all__ = [
    "FILES_PER_FOLDER", "PARALLEL_PNG_MIN_IMAGES", "RunResult", "RunSpec", "generate_run", "generate_to_array",
    "generate_to_folder", "is_array_path", "manifest_name", "merge_manifests", "parse_shard", "png_relpath",
    "run_range", "shard_range",
]  # fmt: skip
