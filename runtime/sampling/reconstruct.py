"""Reconstructions and posterior variations of users' images."""

from __future__ import annotations

import numpy as np

from ..core.checks import check_integer
from .generator import Generator
from .labels import LabelSpec
from .latents import check_seed

#: Posterior samples per image at most: each is a decode of every image, and a column of the picture.
MAX_VARIATIONS = 64


def reconstruct_rows(
    generator: Generator, images: np.ndarray, variations: int = 0, seed: int = 0, *, label: LabelSpec | None = None
) -> np.ndarray:
    """One row per image, uint8 [n, 2 + variations, *uint8_shape]: the input, its reconstruction, then variations.

    `images` are float [n, H, W, C] in the model's value range (user_inputs.load_image makes them);
    `label` is what they show, for a conditional model (as Generator.encode takes it).

    The reconstruction decodes the posterior mean; variation k decodes
    z ~ N(z_mean, exp(z_log_var)), drawn with numpy from `seed`.
    """
    seed = check_seed(seed)
    variations = check_integer(variations, 0, MAX_VARIATIONS, "variations")
    z_mean, z_log_var = generator.encode(images, label=label)
    rng = np.random.default_rng(seed)
    inputs = np.asarray(images).reshape(len(images), *generator.image_shape)
    columns = [generator.to_uint8(inputs), generator.decode_uint8(z_mean, label=label)]
    for _ in range(variations):
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        columns.append(generator.decode_uint8(z_mean + np.exp(0.5 * z_log_var) * eps, label=label))
    return np.stack(columns, axis=1)
