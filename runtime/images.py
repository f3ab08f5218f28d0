"""Pictures of generated uint8 images: single PNGs, contact sheets, GIFs, and output path checks.

Every file is written through `atomic_file`: a crash or a full disk never
leaves a half-written file under a real name.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import InvalidArgumentError, OutputError

ARRAY_SUFFIXES = (".npy", ".npz")
#: Suffixes that name one picture file: never a folder of PNGs.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: A contact sheet of more would be over 100 megapixels at scale 1; nobody looks at that.
MAX_GRID_IMAGES = 10_000


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_file(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _check_output_file(path: Path) -> None:
    """A file we are about to write: not a folder, in an existing writable folder."""
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file name")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: folder does not exist")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path.parent}: folder is not writable")


def check_array_path(path: Path) -> None:
    path = Path(path)
    if path.suffix not in ARRAY_SUFFIXES:
        raise InvalidArgumentError(f"array output must end in {' or '.join(ARRAY_SUFFIXES)}, got {str(path)!r}")
    _check_output_file(path)


def grid(images: np.ndarray, columns: int | None = None, padding: int = 2, scale: int = 1):
    """One PIL image with `images` (uint8 [n, H, W]) tiled row by row on a black background."""
    from PIL import Image

    n, h, w = images.shape[:3]
    if n == 0:
        raise InvalidArgumentError("a grid needs at least one image")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, *images.shape[3:]), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        sheet[y : y + h, x : x + w] = image
    picture = Image.fromarray(sheet)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def check_picture_path(path: Path, suffixes: tuple[str, ...] = (".png",), what: str = "grid") -> None:
    """An output picture path: an allowed suffix, and a writable existing folder."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InvalidArgumentError(f"{what} output must be a {' or '.join(suffixes)} file, got {str(path)!r}")
    _check_output_file(path)


def save_grid(images: np.ndarray, path: Path, scale: int = 1, columns: int | None = None) -> None:
    check_picture_path(path)
    with atomic_file(path) as tmp:
        grid(images, columns=columns, scale=scale).save(tmp, format="PNG")


def save_animation(frames: np.ndarray, path: Path, fps: float, scale: int = 1) -> None:
    """Frames uint8 [n, H, W] as a looping GIF."""
    from PIL import Image

    check_picture_path(path, (".gif",), "animation")
    pictures = [Image.fromarray(frame) for frame in frames]
    if scale != 1:
        pictures = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pictures]
    with atomic_file(path) as tmp:
        pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0
        )
