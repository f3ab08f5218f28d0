"""Files users hand us: their pictures (for the encoder) and latent vectors (.npy).

Pictures become the model's input, 28x28 grayscale floats in [0, 1].
Fashion-MNIST shows light garments on a black background; most photos and
drawings are dark on light. With invert="auto", a picture whose border is
mostly light is inverted, so both kinds reach the encoder the way it was trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InvalidArgumentError

INVERT_CHOICES = ("auto", "yes", "no")
#: Pixels of the outer ring that decide, for invert="auto", whether the background is light.
BORDER = 2


def load_image(path: Path, size: tuple[int, int] = (28, 28), invert: str = "auto") -> np.ndarray:
    """Read any image Pillow reads, as float32 [H, W] in [0, 1], light object on dark."""
    from PIL import Image, UnidentifiedImageError

    if invert not in INVERT_CHOICES:
        raise InvalidArgumentError(f"invert must be one of {', '.join(INVERT_CHOICES)}, got {invert!r}")
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            picture: Image.Image = opened
            if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
                # Transparent areas become white paper, like a drawing's background.
                background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
                picture = Image.alpha_composite(background, picture.convert("RGBA"))
            gray = picture.convert("L").resize((size[1], size[0]), Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise InvalidArgumentError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidArgumentError(f"{path}: not an image Pillow can read ({exc})") from None
    array = np.asarray(gray, np.float32) / 255.0
    if invert == "yes" or (invert == "auto" and _border_is_light(array)):
        array = 1.0 - array
    return array


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
