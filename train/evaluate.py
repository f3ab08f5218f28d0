"""Score a model folder's ONNX files on test images: Fashion-MNIST's test set, or a folder of images.

Reports, in nats per image (see metrics.py for the -ELBO's definition):
- reconstruction, KL and -ELBO over the whole test set, one posterior sample each;
- an importance-weighted estimate of the negative log-likelihood (IWAE bound,
  Burda et al. 2015) with k posterior samples per image, on the first images:
  -log p(x) <= -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), tighter as k grows.
Uses the runtime's Generator, so it scores exactly what users run. The
-ELBO here is a Bernoulli decoder's: it needs a model whose outputs are
probabilities in [0, 1], and an encoder.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vae_gen.core.constants import EVAL_BATCH, EVAL_SEED, IW_IMAGES, IW_SAMPLES
from vae_gen.errors import InvalidArgumentError
from vae_gen.sampling.generator import Generator
from vae_gen.training.settings import FASHION_MNIST

from .data import to_float_images
from .datasets import evaluation_images
from .metrics import bce_per_image, neg_elbo

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Evaluation:
    model: str
    #: What the test images were: "fashion-mnist" (its test set), a folder, or a run's held-out split.
    data: str
    test_images: int
    reconstruction: float
    kl: float
    neg_elbo: float
    iw_nll: float
    iw_samples: int
    iw_images: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [
            ("reconstruction (BCE summed over pixels)", self.reconstruction, f"{self.test_images} test images"),
            ("KL(q(z|x) || p(z))", self.kl, f"{self.test_images} test images"),
            ("-ELBO", self.neg_elbo, f"{self.test_images} test images"),
            (f"NLL, importance-weighted (k={self.iw_samples})", self.iw_nll, f"first {self.iw_images} test images"),
        ]
        lines = [f"{self.model}: nats per image, seed {self.seed}"]
        lines += [f"  {name:<42}{value:>9.2f}   {scope}" for name, value, scope in rows]
        return "\n".join(lines)


def importance_weighted_nll(
    generator: Generator, images: np.ndarray, samples: int, seed: int, labels: np.ndarray | None = None
) -> float:
    """Mean over `images` of -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x) (given each image's label,
    int [n], for a conditional model)."""
    rng = np.random.default_rng(seed)
    per_image = []
    # Images per chunk so one decoder call sees about EVAL_BATCH latents.
    chunk = max(1, EVAL_BATCH // samples)
    for lo in range(0, len(images), chunk):
        x = to_float_images(images[lo : lo + chunk]) if images.dtype == np.uint8 else images[lo : lo + chunk]
        y = None if labels is None else labels[lo : lo + chunk]
        z_mean, z_log_var = (a.astype(np.float64) for a in generator.encode(x, label=y))
        eps = rng.standard_normal((len(x), samples, z_mean.shape[1]))
        z = z_mean[:, None] + np.exp(0.5 * z_log_var)[:, None] * eps
        repeated = None if y is None else np.repeat(y, samples)
        decoded = generator.decode(z.reshape(-1, z.shape[-1]).astype(np.float32), label=repeated)
        log_px_z = -bce_per_image(np.repeat(x, samples, axis=0), decoded).reshape(len(x), samples)
        log_pz = -0.5 * (z**2 + LOG_2PI).sum(axis=2)
        log_qz_x = -0.5 * (eps**2 + z_log_var[:, None] + LOG_2PI).sum(axis=2)
        log_w = log_px_z + log_pz - log_qz_x
        top = log_w.max(axis=1, keepdims=True)
        log_mean_w = top[:, 0] + np.log(np.exp(log_w - top).mean(axis=1))
        per_image.append(-log_mean_w)
    return float(np.concatenate(per_image).mean())


def evaluate(
    model: str | Path,
    data: str = FASHION_MNIST,
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    data_dir: Path | None = None,
    iw_samples: int = IW_SAMPLES,
    iw_images: int = IW_IMAGES,
    test_limit: int | None = None,
    seed: int = EVAL_SEED,
) -> Evaluation:
    """Score `model` on `data` ("fashion-mnist" or a folder: see datasets.evaluation_images), or on `images`
    (uint8 [n, H, W, C]) when given, which `data` then names. A conditional model is scored given each image's
    label (`labels`, int [n], with `images`; the test set's own otherwise): the -ELBO of x given its label."""
    generator = Generator(model)
    if not generator.has_encoder:
        raise InvalidArgumentError(f"model {generator.name!r} has no encoder; scoring it needs one")
    if generator.value_range != (0.0, 1.0):
        low, high = generator.value_range
        raise InvalidArgumentError(
            f"model {generator.name!r} outputs values in [{low:g}, {high:g}]; the -ELBO scored here is a Bernoulli "
            "decoder's, for outputs in [0, 1]"
        )
    if images is None:
        found = evaluation_images(data, generator.image_shape, data_dir)
        images, labels, data = found.images, found.labels, found.what
        if generator.classes and found.class_names != generator.classes:
            raise InvalidArgumentError(
                f"{data}: its classes ({', '.join(found.class_names) or 'none'}) are not model {generator.name!r}'s "
                f"({', '.join(generator.classes)}), so its labels cannot be given to the model"
            )
    if not generator.classes:
        labels = None
    elif labels is None:
        raise InvalidArgumentError(f"model {generator.name!r} is class-conditional; scoring it needs the images' labels")
    x = images[:test_limit]
    y = None if labels is None else labels[:test_limit]
    scores = neg_elbo(x, generator.encode, generator.decode, seed=seed, labels=y)
    iw_images = min(iw_images, len(x))
    iw_nll = importance_weighted_nll(generator, x[:iw_images], iw_samples, seed, None if y is None else y[:iw_images])
    return Evaluation(
        model=generator.name, data=data, test_images=len(x), iw_nll=iw_nll, iw_samples=iw_samples,
        iw_images=iw_images, seed=seed, **scores,
    )  # fmt: skip
