"""The test -ELBO, computed in numpy so Keras and ONNX outputs are scored alike.

-ELBO per image = BCE summed over the pixels of the un-binarized image
(probabilities clipped to [EPSILON, 1 - EPSILON], as Keras does) + the
analytic KL summed over latent dimensions; one posterior sample per image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vae_gen.core.constants import EVAL_BATCH

from .data import to_float_images

#: Keras's backend epsilon, the clip of probabilities inside its BCE.
EPSILON = 1e-7


def bce_per_image(images: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(np.float64)
    p = np.clip(probabilities.reshape(len(images), -1).astype(np.float64), EPSILON, 1.0 - EPSILON)
    return -(x * np.log(p) + (1.0 - x) * np.log1p(-p)).sum(axis=1)


def kl_per_image(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    mu, log_var = z_mean.astype(np.float64), z_log_var.astype(np.float64)
    return -0.5 * (1.0 + log_var - mu**2 - np.exp(log_var)).sum(axis=1)


def neg_elbo(
    images: np.ndarray,
    encode: Callable[..., tuple[np.ndarray, np.ndarray]],
    decode: Callable[..., np.ndarray],
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean reconstruction, KL and -ELBO (nats per image) over `images`: uint8 [n, H, W, C] (converted a batch at a
    time) or float32 in [0, 1].

    With `labels` (int [n], a conditional model), `encode(x, label=y)` and
    `decode(z, label=y)` get each batch's labels: the -ELBO of x given its label.
    """
    rng = np.random.default_rng(seed)
    reconstruction, kl = [], []
    for lo in range(0, len(images), EVAL_BATCH):
        x = images[lo : lo + EVAL_BATCH]
        if x.dtype == np.uint8:
            x = to_float_images(x)
        given = {} if labels is None else {"label": labels[lo : lo + EVAL_BATCH]}
        z_mean, z_log_var = encode(x, **given)
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        z = z_mean + np.exp(0.5 * z_log_var) * eps
        reconstruction.append(bce_per_image(x, decode(z, **given)))
        kl.append(kl_per_image(z_mean, z_log_var))
    rec, kld = np.concatenate(reconstruction), np.concatenate(kl)
    return {"reconstruction": float(rec.mean()), "kl": float(kld.mean()), "neg_elbo": float((rec + kld).mean())}
