"""Fashion-MNIST from its IDX .gz files, found offline first.

Search order: an explicit folder (--data-dir), $VAE_GEN_DATA, Debian's
`dataset-fashion-mnist` package, the Keras cache, and only then Keras's own
download. A folder the user named explicitly is never silently skipped.

Every file is validated: magic number, dimensions, and a length that agrees
with the header. The header is checked against the expected sizes before any
data is read, so a lying header cannot make us allocate gigabytes.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_gen.errors import VaeGenError

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path("~/.keras/datasets/fashion-mnist")
ENV_VAR = "VAE_GEN_DATA"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

#: file name -> (IDX magic number, expected dimensions)
FILES = {
    "train-images-idx3-ubyte.gz": (0x00000803, (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": (0x00000801, (60000,)),
    "t10k-images-idx3-ubyte.gz": (0x00000803, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": (0x00000801, (10000,)),
}

HOW_TO_GET = (
    "get Fashion-MNIST with `apt-get install dataset-fashion-mnist` (Debian), "
    f"or put its four .gz files in a folder and pass --data-dir or set ${ENV_VAR}"
)


class DataError(VaeGenError):
    """Fashion-MNIST could not be found, or a file of it is broken."""


@dataclass(frozen=True)
class FashionMnist:
    """Images as uint8 [n, 28, 28], labels as uint8 [n]."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path


def read_idx(path: Path, magic: int, dims: tuple[int, ...]) -> np.ndarray:
    """Read one gzipped IDX file whose header must say exactly `magic` and `dims`."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as handle:
            header = handle.read(4 + 4 * len(dims))
            if len(header) < 4:
                raise DataError(f"{path}: truncated IDX file (no header)")
            (found_magic,) = struct.unpack(">I", header[:4])
            if found_magic != magic:
                raise DataError(f"{path}: IDX magic number {found_magic:#010x}, expected {magic:#010x}")
            if len(header) < 4 + 4 * len(dims):
                raise DataError(f"{path}: truncated IDX header")
            found_dims = struct.unpack(f">{len(dims)}I", header[4:])
            if found_dims != dims:
                raise DataError(f"{path}: IDX header says dimensions {found_dims}, expected {dims}")
            size = int(np.prod(dims))
            data = handle.read(size)
            if len(data) != size:
                raise DataError(f"{path}: truncated: {len(data)} data bytes, header promises {size}")
            if handle.read(1):
                raise DataError(f"{path}: longer than its header says ({size} data bytes)")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{path}: missing; {HOW_TO_GET}") from None
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    return np.frombuffer(data, np.uint8).reshape(dims)


def read_folder(folder: Path) -> FashionMnist:
    folder = Path(folder)
    arrays = {name: read_idx(folder / name, magic, dims) for name, (magic, dims) in FILES.items()}
    return FashionMnist(
        train_images=arrays["train-images-idx3-ubyte.gz"],
        train_labels=arrays["train-labels-idx1-ubyte.gz"],
        test_images=arrays["t10k-images-idx3-ubyte.gz"],
        test_labels=arrays["t10k-labels-idx1-ubyte.gz"],
        source=folder,
    )


def _has_all_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def find_data_dir(data_dir: Path | None = None, allow_download: bool = True) -> Path:
    """The first folder holding all four files, in the documented order."""
    for explicit, what in ((data_dir, "--data-dir"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if explicit is not None:
            folder = Path(explicit).expanduser()
            if not _has_all_files(folder):
                missing = [n for n in FILES if not (folder / n).is_file()]
                raise DataError(f"{what} {folder}: missing {', '.join(missing)}; {HOW_TO_GET}")
            return folder
    for folder in (DEBIAN_DIR, KERAS_CACHE_DIR.expanduser()):
        if _has_all_files(folder):
            return folder
    if allow_download:
        return _download_with_keras()
    raise DataError(f"Fashion-MNIST not found in {DEBIAN_DIR} or {KERAS_CACHE_DIR}; {HOW_TO_GET}")


def _download_with_keras() -> Path:
    log.info("Fashion-MNIST not found locally; trying Keras's download")
    try:
        import keras

        keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # any network or HTTP failure: the advice is the same
        raise DataError(f"Fashion-MNIST not found locally and the download failed ({exc}); {HOW_TO_GET}") from None
    folder = KERAS_CACHE_DIR.expanduser()
    if not _has_all_files(folder):
        raise DataError(f"Keras downloaded Fashion-MNIST but {folder} lacks its .gz files; {HOW_TO_GET}")
    return folder


def load_fashion_mnist(data_dir: Path | None = None, allow_download: bool = True) -> FashionMnist:
    """Find, read and validate Fashion-MNIST."""
    folder = find_data_dir(data_dir, allow_download=allow_download)
    log.info("reading Fashion-MNIST from %s", folder)
    return read_folder(folder)


def to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W, C] (or [n, H, W]: C = 1) -> float32 [n, H, W, C] in [0, 1], the VAE's input and target."""
    floats = images.astype(np.float32) / 255.0
    return floats[..., None] if floats.ndim == 3 else floats
