"""A run's images as one array file: .npy, or .npz holding "images" (and, for a conditional model, "labels"
and "classes").

The file is written sequentially, header then batches, never held whole:
memory stays bounded whatever the count. (A memmap would be simpler, but
its dirty pages count as resident memory and grow with the file.) The
header's shape is the generator's uint8 image shape, so it always agrees
with the bytes that follow it; the file appears under its name only once
complete.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import CancelEvent, InvalidArgumentError, OutputError, raise_if_cancelled
from ..sampling.generator import Generator, ProgressCallback
from .atomic import atomic_file, remove_stale_temporaries
from .images import ARRAY_SUFFIXES, check_array_path
from .run_layout import RunSpec

#: The array's name inside a .npz file.
NPZ_KEY = "images"
#: A conditional model's .npz also holds each image's label and the class names, in label order.
NPZ_LABELS, NPZ_CLASSES = "labels", "classes"


def is_array_path(path: str | Path) -> bool:
    return Path(path).suffix in ARRAY_SUFFIXES


def generate_to_array(
    generator: Generator,
    path: Path,
    spec: RunSpec,
    lo: int = 0,
    hi: int | None = None,
    *,
    mode: str = "new",
    progress: ProgressCallback | None = None,
    on_batch: Callable[[int, np.ndarray], None] | None = None,
    cancel: CancelEvent | None = None,
) -> None:
    """Write images [lo, hi) as one uint8 array [hi - lo, H, W] (or [hi - lo, H, W, C] for colour models)
    to a .npy, or a .npz under the key "images".

    A conditional model's .npz also holds "labels" (int64 [hi - lo], each
    image's class index; for a blend, float32 [hi - lo, K], its class
    weights) and "classes" (the class names, in label order).

    mode: "new" refuses an existing file, "overwrite" replaces it once the
    new one is complete. There is no "resume": an array file is written
    whole or not at all.
    """
    hi = spec.count if hi is None else hi
    if mode not in ("new", "overwrite"):
        raise InvalidArgumentError(
            f'mode must be "new" or "overwrite" for an array file (written whole or not at all), got {mode!r}'
        )
    path = Path(path)
    check_array_path(path)
    if path.exists() and mode != "overwrite":
        raise OutputError(f'{path}: already exists; pass mode="overwrite" to replace it')
    remove_stale_temporaries(path)  # what a killed earlier run into this path left
    shape = (hi - lo, *generator.uint8_shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    batches = generator.stream(spec.sampling.part(lo, hi), spec.batch_size, progress)
    labels = spec.sampling.labels
    try:
        with atomic_file(path) as tmp:
            if path.suffix == ".npy":
                with open(tmp, "wb") as handle:
                    _write_npy(handle, header, batches, on_batch, cancel)
            else:
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                    with archive.open(f"{NPZ_KEY}.npy", "w", force_zip64=True) as handle:
                        _write_npy(handle, header, batches, on_batch, cancel)
                    if labels is not None:
                        blend = isinstance(labels.spec, dict)
                        values = labels.rows(lo, hi) if blend else labels.indices(lo, hi)
                        for key, array in ((NPZ_LABELS, values), (NPZ_CLASSES, np.array(labels.classes))):
                            with archive.open(f"{key}.npy", "w", force_zip64=True) as handle:
                                np.lib.format.write_array(handle, array, allow_pickle=False)
    except OSError as exc:
        raise OutputError(f"{path}: writing failed ({exc.strerror or exc}); no partial file was left") from None


def _write_npy(
    handle: IO[bytes],
    header: dict[str, Any],
    batches: Iterable[tuple[int, np.ndarray]],
    on_batch: Callable[[int, np.ndarray], None] | None,
    cancel: CancelEvent | None,
) -> None:
    np.lib.format.write_array_header_1_0(handle, header)
    expected = header["shape"][1:]
    for first, batch in batches:
        raise_if_cancelled(cancel)
        if batch.shape[1:] != expected or batch.dtype != np.uint8:
            # Never write bytes that disagree with the header: np.load would return scrambled images.
            raise OutputError(
                f"a batch of shape {list(batch.shape)} {batch.dtype} disagrees with the header {list(header['shape'])} uint8"
            )
        handle.write(np.ascontiguousarray(batch).tobytes())
        if on_batch is not None:
            on_batch(first, batch)
