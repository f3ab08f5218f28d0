"""Files users hand us: their pictures (for the encoder) and latent vectors (.npy).

Pictures become the model's input: its size and channels (grayscale or
RGB), as floats in its value range. Fashion-MNIST shows light garments on a
black background; most photos and drawings are dark on light. With
invert="auto", a picture whose border is mostly light is inverted for a
grayscale model, so both kinds reach the encoder the way it was trained; an
RGB model's pictures are taken as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ..core.checks import shown
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

INVERT_CHOICES = ("auto", "yes", "no")
#: Pixels of the outer ring that decide, for invert="auto", whether the background is light.
BORDER = 2


def load_image(
    path: Path,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    value_range: tuple[float, float] = (0.0, 1.0),
    invert: str = "auto",
) -> np.ndarray:
    """Read any image Pillow reads as a model input: float32 [H, W, C] in value_range.

    Resized to (H, W) with Lanczos; converted to grayscale (C = 1) or RGB
    (C = 3); transparent areas become white. invert: "yes", "no", or "auto"
    (grayscale models only: invert when the border is mostly light).
    """
    if invert not in INVERT_CHOICES:
        raise InvalidArgumentError(f"invert must be one of {', '.join(INVERT_CHOICES)}, got {invert!r}")
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no such image file")
    return model_input(read_picture(path, image_shape, str(path)), value_range, invert)


#: Pictures with more pixels than this (read from the header, before decoding) are refused: decoding one takes
#: about 4 bytes a pixel (a 7,000 x 3,500 photo fits).
MAX_PICTURE_PIXELS = 25_000_000
#: ... and no side longer than this: Pillow keeps a block per row, so a 1 x 25,000,000 picture would take 2 GB.
MAX_PICTURE_SIDE = 20_000


class PictureTooLargeError(InvalidArgumentError):
    """A picture over MAX_PICTURE_PIXELS (HTTP 413)."""


def read_picture(source: Path | BinaryIO, image_shape: tuple[int, int, int], name: str) -> np.ndarray:
    """A picture file (a path or an open binary file) as picture_pixels gives it, with every failure of reading it
    one InvalidArgumentError naming `name` and the reason.

    Pillow opens some files it cannot convert (multi-frame formats whose first frame cannot be sought, LAB
    TIFFs, PNG text chunks that inflate past its limit, decompression bombs), each failing in its own way."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as picture:
            too_large = picture.width * picture.height > MAX_PICTURE_PIXELS
            if too_large or max(picture.width, picture.height) > MAX_PICTURE_SIDE:  # from the header, before decoding
                raise PictureTooLargeError(f"{name}: a picture of {picture.width}x{picture.height} pixels; at most "
                                           f"{MAX_PICTURE_PIXELS:,}, and {MAX_PICTURE_SIDE:,} a side")  # fmt: skip
            return picture_pixels(picture, image_shape)
    except Image.DecompressionBombError:  # so large that Pillow refuses it while opening
        raise PictureTooLargeError(
            f"{name}: a decompression bomb (Pillow refuses its size); at most {MAX_PICTURE_PIXELS:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise InvalidArgumentError(f"{name}: not a picture Pillow can read") from None
    except InvalidArgumentError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's decoders raise OSError, ValueError, EOFError, SyntaxError, struct.error...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidArgumentError(f"{name}: cannot read this picture ({shown(reason)[1:-1]})") from None


def model_input(pixels: np.ndarray, value_range: tuple[float, float], invert: str = "auto") -> np.ndarray:
    """uint8 pixels [H, W, C] (picture_pixels) as an encoder input: float32 in value_range, inverted as `invert`
    says (see load_image)."""
    array = pixels.astype(np.float32) / 255.0
    if invert == "yes" or (invert == "auto" and pixels.shape[-1] == 1 and _border_is_light(array)):
        array = 1.0 - array
    low, high = value_range
    return (low + array * (high - low)).astype(np.float32)


#: Pillow modes of more than 8 bits per pixel: scaled to 8 bits, never clipped.
WIDE_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def picture_pixels(picture: PILImage, image_shape: tuple[int, int, int]) -> np.ndarray:
    """A Pillow picture as uint8 [H, W, C], the way vae-gen reads every picture (training folders included).

    The first frame; turned upright as its EXIF orientation says (phone
    photos); 16-bit and float grayscale scaled to 8 bits (Pillow's own
    conversion would clip them); transparent areas white, like paper;
    grayscale (C = 1) or RGB (C = 3); resized to (H, W) with Lanczos where
    its size differs.
    """
    from PIL import Image, ImageOps

    height, width, channels = image_shape
    picture.seek(0)
    picture = ImageOps.exif_transpose(picture) or picture
    if picture.mode in WIDE_MODES:
        wide = np.asarray(picture, np.float64) * (255.0 / WIDE_MODES[picture.mode])
        picture = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8))
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, picture.convert("RGBA"))
    picture = picture.convert("L" if channels == 1 else "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(picture, np.uint8).reshape(image_shape)


def _border_is_light(array: np.ndarray) -> bool:
    ring = np.concatenate([
        array[:BORDER].ravel(), array[-BORDER:].ravel(), array[:, :BORDER].ravel(), array[:, -BORDER:].ravel(),
    ])  # fmt: skip
    return float(ring.mean()) > 0.5


def load_latent(path: Path, latent_dim: int) -> np.ndarray:
    """One latent vector from a .npy file holding [latent_dim] or [1, latent_dim] finite floats."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle a user's file
    except FileNotFoundError:
        raise InvalidArgumentError(f"{path}: no such latent file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidArgumentError(f"{path}: not a .npy array without pickles ({exc})") from None
    if not isinstance(array, np.ndarray) or array.shape not in ((latent_dim,), (1, latent_dim)):
        shape = list(getattr(array, "shape", []))
        raise InvalidArgumentError(f"{path}: latent must have shape [{latent_dim}] or [1, {latent_dim}], got {shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"{path}: latent must be floating point, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(f"{path}: latent must be finite: found NaN or inf")
    return array.reshape(latent_dim).astype(np.float32)
