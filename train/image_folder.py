"""A folder of the user's images as training data: flat (unlabelled), or one subfolder per class.

    DIR/*.png                    unlabelled
    DIR/CLASSNAME/*.png          labelled: folder names, sorted, are the class names
    DIR/train/... and DIR/test/...   either layout, already split

Images are PNG, JPEG, BMP, GIF or WebP (first frame); hidden files and
other files are ignored. Reading takes two passes: the first opens every
file's header (cheap) to settle the size and channels and to split train
from test; the second decodes each image straight into one uint8 array per
split, so no float32 copy of the set is ever made. A corrupt file is an
error naming it, or, with skip_bad, left out and counted.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_gen.errors import VaeGenError
from vae_gen.sampling.user_inputs import picture_pixels

log = logging.getLogger(__name__)

#: The files a training folder's images may be in.
READABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
EXIF_ORIENTATION = 0x0112
#: Pillow modes that hold no colour; every other mode is read as RGB.
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


SKIP_BAD_HINT = "pass --skip-bad to leave such files out"


class ImageFolderError(VaeGenError):
    """A training folder that cannot be read as asked: no images, mixed layouts, a corrupt file, mixed sizes."""


@dataclass(frozen=True)
class Candidate:
    path: Path
    label: int


@dataclass(frozen=True)
class Split:
    """Images of one split: uint8 [n, H, W, C] and their labels int64 [n] (all 0 for a flat folder)."""

    images: np.ndarray
    labels: np.ndarray


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def list_images(folder: Path) -> tuple[list[Candidate], tuple[str, ...]]:
    """The image files of one folder, flat or in class subfolders, with their labels and the class names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFolderError(f"{folder}: not a folder of images")
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    top = [p for p in entries if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES]
    classes = [p for p in entries if p.is_dir() and any(_is_image(f) for f in p.iterdir())]
    if top and classes:
        raise ImageFolderError(
            f"{folder}: holds both images and class folders ({classes[0].name}/); put every image in a class folder, "
            "or none in any"
        )
    if classes:
        found = [Candidate(f, label) for label, d in enumerate(classes) for f in sorted(d.iterdir()) if _is_image(f)]
        return found, tuple(d.name for d in classes)
    if not top:
        raise ImageFolderError(f"{folder}: no images found ({', '.join(READABLE_SUFFIXES)}, in the folder or its class folders)")
    return [Candidate(f, 0) for f in top], ()


def _is_image(path: Path) -> bool:
    return path.is_file() and _visible(path) and path.suffix.lower() in READABLE_SUFFIXES


def _header(path: Path) -> tuple[tuple[int, int], bool]:
    """((height, width), is_colour) from the file's header, without decoding the pixels."""
    from PIL import Image

    with Image.open(path) as image:
        colour = image.mode not in GRAY_MODES
        if image.mode == "P":  # a palette image is colour unless its palette is all grays
            palette = image.getpalette() or []
            colour = any(len(set(palette[i : i + 3])) > 1 for i in range(0, len(palette), 3))
        # EXIF orientations 5 to 8 turn the picture a quarter: it is read upright (picture_pixels).
        upright = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
        return ((image.width, image.height) if upright else (image.height, image.width)), colour


def survey(
    candidates: list[Candidate],
    image_size: tuple[int, int] | None,
    channels: int | None,
    skip_bad: bool,
    hint: str = SKIP_BAD_HINT,
) -> tuple[list[Candidate], tuple[int, int], int, list[Path]]:
    """Open every header: (readable candidates, (H, W), C, bad files). Mixed sizes need image_size."""
    good, bad, sizes, any_colour = [], [], Counter[tuple[int, int]](), False
    for candidate in candidates:
        try:
            size, colour = _header(candidate.path)
        except Exception as exc:  # Pillow raises many kinds for a bad file: each is "not an image"
            if not skip_bad:
                raise ImageFolderError(f"{candidate.path}: not a readable image ({exc}); {hint}") from None
            bad.append(candidate.path)
            continue
        good.append(candidate)
        sizes[size] += 1
        any_colour = any_colour or colour
    if not good:
        raise ImageFolderError(f"no readable images among {len(candidates)} files")
    if image_size is None:
        if len(sizes) > 1:
            common = ", ".join(f"{h}x{w}: {n}" for (h, w), n in sizes.most_common(3))
            raise ImageFolderError(
                f"the images have {len(sizes)} different sizes ({common}{', ...' if len(sizes) > 3 else ''}); "
                "pass --image-size HxW to resize them all"
            )
        image_size = next(iter(sizes))
    return good, image_size, channels or (3 if any_colour else 1), bad


def read_split(
    candidates: list[Candidate], image_shape: tuple[int, int, int], skip_bad: bool, hint: str = SKIP_BAD_HINT
) -> tuple[Split, list[Path]]:
    """Decode `candidates` into uint8 [n, H, W, C], resized (Lanczos) where their size differs; (split, bad files)."""
    from PIL import Image

    height, width, channels = image_shape
    images = np.empty((len(candidates), height, width, channels), np.uint8)
    labels = np.empty(len(candidates), np.int64)
    bad: list[Path] = []
    count = 0
    for candidate in candidates:
        try:
            with Image.open(candidate.path) as opened:
                images[count] = picture_pixels(opened, image_shape)
        except Exception as exc:  # a truncated or corrupt file fails only here, when its pixels are decoded
            if not skip_bad:
                raise ImageFolderError(f"{candidate.path}: not a readable image ({exc}); {hint}") from None
            bad.append(candidate.path)
            continue
        labels[count] = candidate.label
        count += 1
    # Slices, not copies: the arrays stay the only copy of the pixels.
    return Split(images[:count], labels[:count]), bad


def split_candidates(candidates: list[Candidate], test_fraction: float, seed: int) -> tuple[list[Candidate], list[Candidate]]:
    """A seeded random split: the same files go to test for the same seed and fraction."""
    if len(candidates) < 2:
        raise ImageFolderError(f"{len(candidates)} image: too few to hold out test images (need at least 2)")
    # Rounded first: 100 x 0.07 is 7.000000000000001 in floating point, which must hold out 7, not 8.
    n_test = min(len(candidates) - 1, max(1, math.ceil(round(len(candidates) * test_fraction, 9))))
    order = np.random.default_rng(seed).permutation(len(candidates)).tolist()
    # Both splits in the permuted order, so that a limit (train_limit, test_limit) takes a sample, not the
    # first classes.
    return [candidates[i] for i in order[n_test:]], [candidates[i] for i in order[:n_test]]
