"""How real a set of generated images looks, measured on feature vectors: Fréchet distance, class coverage,
precision and recall.

The features are the penultimate layer of the project's own Fashion-MNIST
classifier (vae_gen.train.classifier.features), but every function here takes
plain arrays, float [n, f], one row per image, and needs numpy and scipy
only. Read together, so that a gain in one that costs another shows:

- `frechet_distance`: the distance between the Gaussians fitted to two sets
  (FID's formula); lower is closer. It mixes quality and diversity.
- `class_entropy`: the entropy of the classifier's predicted classes, max
  ln K; a generator that drops classes loses it.
- `precision_recall` (Kynkäänniemi et al. 2019): the share of generated
  images that lie on the real images' manifold (quality), and of real images
  that lie on the generated ones' (coverage: mode dropping lowers recall).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from vae_gen.errors import InvalidArgumentError

log = logging.getLogger(__name__)

#: Kynkäänniemi et al.'s neighbourhood size: each point's manifold ball reaches its k-th nearest neighbour.
NEIGHBOURS = 3
#: Rows of one float32 block of pairwise distances: 1,024 x 10,000 distances are 41 MB.
CHUNK_ROWS = 1024
#: Added to both covariances' diagonals when the square root of their product fails (FID's usual fallback).
SQRTM_EPS = 1e-6
#: Largest imaginary part on the square root's diagonal that is taken for rounding and dropped.
IMAGINARY_TOLERANCE = 1e-3


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of the two sets' means and covariances (float [n, f],
    n >= 2 each, the same f); >= 0 up to rounding, 0 for a set and itself."""
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise InvalidArgumentError(f"the two sets must have the same features, got {a.shape[1]} and {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise InvalidArgumentError(f"a covariance needs at least 2 rows per set, got {len(a)} and {len(b)}")
    return frechet_distance_from_moments(a.mean(axis=0), _covariance(a), b.mean(axis=0), _covariance(b))


def frechet_distance_from_moments(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """The Fréchet (2-Wasserstein) distance of N(mu_a, sigma_a) and N(mu_b, sigma_b): means [f], covariances [f, f]."""
    from scipy.linalg import sqrtm

    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    f = len(mu_a)
    if mu_b.shape != (f,) or sigma_a.shape != (f, f) or sigma_b.shape != (f, f):
        raise InvalidArgumentError(
            f"means must be [f] and covariances [f, f], got {[list(x.shape) for x in (mu_a, sigma_a, mu_b, sigma_b)]}"
        )

    def root(product: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # "Matrix is singular": dead ReLU features make it so; the result is checked below instead.
            warnings.simplefilter("ignore")
            return np.asarray(sqrtm(product))

    product = sigma_a @ sigma_b
    covmean = root(product)
    if not (np.isfinite(covmean).all() and _is_root(covmean, product)):
        log.warning("sqrtm of the covariances' product failed; adding %g to their diagonals", SQRTM_EPS)
        offset = np.eye(f) * SQRTM_EPS
        covmean = root((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        imaginary = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imaginary > IMAGINARY_TOLERANCE:
            raise ValueError(f"the square root of the covariances' product has imaginary parts up to {imaginary:.3g}")
        covmean = covmean.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))


def class_entropy(predictions: np.ndarray, classes: int = 10) -> float:
    """The entropy in nats of the histogram of predicted classes, 0 (one class) to ln(classes) (all equally often).

    `predictions` is either class probabilities float [n, classes] (each row's
    most probable class counts) or predicted labels, integers [n] in 0 .. classes - 1.
    """
    p = np.asarray(predictions)
    if p.ndim == 2:
        if p.shape[1] != classes:
            raise InvalidArgumentError(f"probabilities must be [n, {classes}], got {list(p.shape)}")
        labels = p.argmax(axis=1)
    elif p.ndim == 1 and (np.issubdtype(p.dtype, np.integer) or len(p) == 0):
        labels = p.astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise InvalidArgumentError(f"labels must lie in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    else:
        raise InvalidArgumentError(
            f"predictions must be probabilities [n, {classes}] or integer labels [n], got {p.dtype} {list(p.shape)}"
        )
    if len(labels) == 0:
        raise InvalidArgumentError("no predictions: the entropy of an empty histogram is undefined")
    share = np.bincount(labels, minlength=classes) / len(labels)
    share = share[share > 0]
    return float(-(share * np.log(share)).sum())


def max_class_entropy(classes: int = 10) -> float:
    """ln(classes): the entropy of a generator that makes every class equally often (2.303 for 10)."""
    return math.log(classes)


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = NEIGHBOURS, chunk: int = CHUNK_ROWS
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of generated features against real ones.

    Each set's manifold is the union of balls around its points, each ball
    reaching the point's k-th nearest neighbour in its own set (the point
    itself not counted). precision = the share of fake points inside the real
    manifold; recall = the share of real points inside the fake manifold.
    Both in [0, 1]. Euclidean distances in float32, `chunk` rows at a time,
    so two sets of 10,000 never hold more than chunk x 10,000 distances.
    """
    real = _features(real_features, "real_features").astype(np.float32)
    fake = _features(fake_features, "fake_features").astype(np.float32)
    if real.shape[1] != fake.shape[1]:
        raise InvalidArgumentError(f"the two sets must have the same features, got {real.shape[1]} and {fake.shape[1]}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < min(len(real), len(fake)):
        raise InvalidArgumentError(
            f"k must be an integer in 1 .. {min(len(real), len(fake)) - 1} (fewer than each set's rows), got {k!r}"
        )
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidArgumentError(f"chunk must be an integer >= 1, got {chunk!r}")
    real_radii = _kth_neighbour_squared(real, k, chunk)
    fake_radii = _kth_neighbour_squared(fake, k, chunk)
    fake_inside = np.zeros(len(fake), bool)
    real_inside = np.zeros(len(real), bool)
    real_norms = _squared_norms(real)
    for lo in range(0, len(fake), chunk):
        block = fake[lo : lo + chunk]
        distances = _squared_distances(block, _squared_norms(block), real, real_norms)  # [c, n_real]
        fake_inside[lo : lo + chunk] = (distances <= real_radii[None, :]).any(axis=1)
        real_inside |= (distances <= fake_radii[lo : lo + chunk, None]).any(axis=0)
    return float(fake_inside.mean()), float(real_inside.mean())


def _kth_neighbour_squared(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """float32 [n]: each row's squared distance to its k-th nearest other row."""
    norms = _squared_norms(x)
    radii = np.empty(len(x), np.float32)
    for lo in range(0, len(x), chunk):
        distances = _squared_distances(x[lo : lo + chunk], norms[lo : lo + chunk], x, norms)
        rows = np.arange(len(distances))
        distances[rows, lo + rows] = 0.0  # a point's distance to itself, exactly; it is the 0-th neighbour
        radii[lo : lo + chunk] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _squared_distances(a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    # |a|^2 - 2 a.b + |b|^2 in float32; rounding can make it slightly negative, never truly.
    distances = a @ b.T
    distances *= np.float32(-2.0)
    distances += a_norms[:, None]
    distances += b_norms[None, :]
    return np.maximum(distances, np.float32(0.0), out=distances)


def _squared_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)


def _covariance(x: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.cov(x, rowvar=False))


def _is_root(root: np.ndarray, product: np.ndarray) -> bool:
    """root @ root reproduces product to 1e-6 of its norm (scipy's sqrtm may return a poor root of a singular matrix)."""
    scale = float(np.linalg.norm(product))
    return scale == 0.0 or float(np.linalg.norm(root @ root - product)) <= 1e-6 * scale


def _features(x: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[1] < 1 or not np.issubdtype(array.dtype, np.number):
        raise InvalidArgumentError(f"{name} must be numbers of shape [n, features], got {array.dtype} {list(array.shape)}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InvalidArgumentError(f"{name} must be finite")
    return array
