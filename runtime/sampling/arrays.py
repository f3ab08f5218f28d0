"""The float arrays callers hand a model: latents, noise and images, checked before any graph sees them.

Each check accepts any numeric array-like of the right shape and a floating
dtype, and returns a contiguous float32 array of finite values; anything else
is one InvalidArgumentError naming the shape or values that were wrong. A
value beyond float32 becomes inf on conversion and is refused as such.
"""

from __future__ import annotations

import numpy as np

from ..core.checks import numeric_array
from ..errors import InvalidArgumentError


def as_float32(array: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy (or view); values beyond float32 become inf quietly, for the caller's finiteness
    check to refuse in one line (numpy would also print a RuntimeWarning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def _finite(array: np.ndarray, what: str) -> np.ndarray:
    array = as_float32(array)
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(f"{what} must be finite float32 values: found NaN, inf or a value beyond float32")
    return array


def check_latents(z: object, latent_dim: int, model: str) -> np.ndarray:
    """Latents float [n, latent_dim] for model `model`."""
    array = numeric_array(z, "latents")
    if array.ndim != 2 or array.shape[1] != latent_dim:
        raise InvalidArgumentError(f"latents must have shape [n, {latent_dim}] for model {model!r}, got {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"latents must be floating point, got dtype {array.dtype}")
    return _finite(array, "latents")


def check_noise(noise: object, noise_dim: int, model: str) -> np.ndarray:
    """Prior noise float [n, noise_dim] for model `model`."""
    array = numeric_array(noise, "noise")
    if array.ndim != 2 or array.shape[1] != noise_dim or not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"noise must be floats of shape [n, {noise_dim}] for model {model!r}, "
                                   f"got {array.dtype} {list(array.shape)}")  # fmt: skip
    return _finite(array, "noise")


def check_images(images: object, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Images float [n, H, W, C] (or [n, H, W] when C is 1) of `image_shape`, as [n, H, W, C]."""
    array = numeric_array(images, "images")
    if array.ndim == 3 and image_shape[2] == 1:
        array = array[..., None]
    if array.ndim != 4 or tuple(array.shape[1:]) != image_shape:
        raise InvalidArgumentError(f"images must have shape [n, {', '.join(map(str, image_shape))}], got {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"images must be floating point values, got dtype {array.dtype}")
    return _finite(array, "images")
