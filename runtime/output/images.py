"""Pictures of generated uint8 images: single PNGs, contact sheets, GIFs, and output path checks.

Every file is written through `atomic_file` or `write_bytes_atomically`: a crash or a full disk never
leaves a half-written file under a real name.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

from ..errors import InvalidArgumentError, OutputError
from .atomic import atomic_file, write_bytes_atomically

ARRAY_SUFFIXES = (".npy", ".npz")
#: Suffixes that name one picture file: never a folder of PNGs.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: A contact sheet of more would be over 100 megapixels at scale 1; nobody looks at that.
MAX_GRID_IMAGES = 10_000


#: zlib's default level.
PNG_COMPRESSION = 6
_PNG_COLOR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type (grayscale, RGB)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image [H, W] (grayscale) or [H, W, 3] (RGB) as a complete PNG file.

    Written directly (signature, IHDR, one IDAT, IEND) rather than through
    Pillow: for a 28x28 image Pillow's per-call overhead outweighs the
    compression, and bulk runs write millions of them. Rows use filter type 0
    (none), so files come out a little larger than Pillow's, which picks a
    filter per row.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or channels not in _PNG_COLOR_TYPE:
        raise InvalidArgumentError(f"a PNG needs uint8 [H, W] or [H, W, 3], got {image.dtype} {list(image.shape)}")
    height, width = image.shape[:2]
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # a leading 0 per row: filter "none"
    rows[:, 1:] = image.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPE[channels], 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESSION)),
        _png_chunk(b"IEND", b""),
    ))  # fmt: skip


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def save_png(image: np.ndarray, path: Path) -> None:
    write_bytes_atomically(path, png_bytes(image))


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


#: The largest contact sheet, in pixel values (height x width x channels): 128 MB of uint8, and about as much
#: again while Pillow scales and encodes it.
MAX_GRID_VALUES = 2**27
#: The largest nearest-neighbour upscaling of a sheet.
MAX_GRID_SCALE = 64


def check_grid_size(count: int, image_shape: tuple[int, int, int], scale: int, what: str = "grid_scale=") -> None:
    """Refuse, before any work, a sheet of `count` images at `scale` over MAX_GRID_VALUES (memory it would take)."""
    h, w, c = image_shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    values = (rows * (h + 2) + 2) * (columns * (w + 2) + 2) * c * scale * scale
    if values > MAX_GRID_VALUES:
        largest = max(1, math.isqrt(MAX_GRID_VALUES * scale * scale // values))
        raise InvalidArgumentError(
            f"{what} {scale} makes a sheet of {count} images {values / 2**20:,.0f} MiB, over the {MAX_GRID_VALUES // 2**20} MiB "
            f"allowed; use at most {largest} or fewer images"
        )


def grid(images: np.ndarray, columns: int | None = None, padding: int = 2, scale: int = 1) -> PILImage:
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


def rows_by_class(images: np.ndarray, first_index: int, classes: int) -> tuple[np.ndarray, int]:
    """Images first_index.. of a run whose image i is of class i mod `classes`, rearranged for `grid` so that
    row r holds class r's images in index order; cells a class has no image for stay black. Returns (cells, columns)."""
    columns = math.ceil(len(images) / classes)
    cells = np.zeros((classes * columns, *images.shape[1:]), np.uint8)
    for offset, image in enumerate(images):
        row = (first_index + offset) % classes
        first_of_row = (row - first_index) % classes  # the offset of this class's first image in the slice
        cells[row * columns + (offset - first_of_row) // classes] = image
    return cells, columns


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
