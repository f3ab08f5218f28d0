"""The sample-quality measures (vae_gen.train.sample_quality) on small arrays with known answers. numpy and scipy only."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("scipy")

from vae_gen.errors import InvalidArgumentError
from vae_gen.train.sample_quality import (
    class_entropy,
    frechet_distance,
    frechet_distance_from_moments,
    max_class_entropy,
    precision_recall,
)


def with_moments(rng: np.random.Generator, n: int, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """n rows whose sample mean and sample covariance (ddof 1) are exactly `mean` and `covariance`."""
    x = rng.standard_normal((n, len(mean)))
    x -= x.mean(axis=0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # sample covariance I
    return mean + x @ np.linalg.cholesky(covariance).T


def random_covariance(rng: np.random.Generator, f: int) -> np.ndarray:
    a = rng.standard_normal((f, f))
    return a @ a.T + 0.1 * np.eye(f)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 16)) * 3 + 1
    assert abs(frechet_distance(x, x)) < 1e-9
    assert abs(frechet_distance(x.astype(np.float32), x.astype(np.float32))) < 1e-6


def test_frechet_distance_is_the_closed_form_of_the_two_gaussians():
    """With S_a = I, tr (S_a S_b)^(1/2) is the sum of the square roots of S_b's eigenvalues, so
    FD = |mu_a - mu_b|^2 + f + tr S_b - 2 sum sqrt(lambda_i(S_b)); S_b is not diagonal."""
    rng = np.random.default_rng(1)
    f = 6
    mu_a, mu_b = rng.standard_normal(f), rng.standard_normal(f) + 2
    sigma_b = random_covariance(rng, f)
    closed = float(np.sum((mu_a - mu_b) ** 2) + f + np.trace(sigma_b) - 2 * np.sqrt(np.linalg.eigvalsh(sigma_b)).sum())
    a = with_moments(rng, 400, mu_a, np.eye(f))
    b = with_moments(rng, 300, mu_b, sigma_b)
    assert frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)
    assert frechet_distance_from_moments(mu_a, np.eye(f), mu_b, sigma_b) == pytest.approx(closed, rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians():
    """Diagonal covariances commute: FD = |mu_a - mu_b|^2 + sum (sqrt(s_a) - sqrt(s_b))^2."""
    s_a, s_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu_a, mu_b = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert frechet_distance_from_moments(mu_a, np.diag(s_a), mu_b, np.diag(s_b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_copes_with_dead_features():
    """ReLU features that are always 0 make both covariances, and their product, singular."""
    rng = np.random.default_rng(2)
    a = np.maximum(rng.standard_normal((300, 10)), 0)
    b = np.maximum(rng.standard_normal((300, 10)) + 0.5, 0)
    a[:, :3] = b[:, :3] = 0
    full = frechet_distance(a, b)
    assert np.isfinite(full) and full > 0
    assert full == pytest.approx(frechet_distance(a[:, 3:], b[:, 3:]), rel=1e-6)


def test_precision_and_recall_of_identical_sets_are_one():
    x = np.random.default_rng(3).standard_normal((400, 8))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)


def test_precision_and_recall_of_far_apart_sets_are_zero():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((300, 8))
    fake = rng.standard_normal((200, 8)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_dropping_a_mode_keeps_precision_and_halves_recall():
    """Real images in two far-apart clusters, generated ones in one of them only: they look as real as a
    generator's that covers both (same precision), and half of the real ones are missed (recall halves)."""
    rng = np.random.default_rng(5)
    real = np.concatenate([rng.standard_normal((500, 4)), rng.standard_normal((500, 4)) + 50])
    both = np.concatenate([rng.standard_normal((250, 4)), rng.standard_normal((250, 4)) + 50])
    one = rng.standard_normal((500, 4))
    precision_both, recall_both = precision_recall(real, both)
    precision_one, recall_one = precision_recall(real, one)
    assert precision_one > 0.9 and abs(precision_one - precision_both) < 0.03
    assert recall_both > 0.9 and 0.4 < recall_one <= 0.5


def test_precision_and_recall_do_not_depend_on_the_chunk_size():
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((257, 5)), rng.standard_normal((131, 5)) * 1.5 + 0.3
    expected = precision_recall(real, fake, chunk=10_000)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    for chunk in (1, 7, 64):
        assert precision_recall(real, fake, chunk=chunk) == expected


def test_precision_recall_matches_a_brute_force_count():
    rng = np.random.default_rng(7)
    real, fake = rng.standard_normal((120, 3)), rng.standard_normal((90, 3)) + 0.7
    k = 3

    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    cross = np.linalg.norm(fake[:, None] - real[None], axis=2)  # [fake, real]
    precision = (cross <= radii(real)[None, :]).any(axis=1).mean()
    recall = (cross <= radii(fake)[:, None]).any(axis=0).mean()
    got = precision_recall(real, fake, k=k)
    assert got == pytest.approx((precision, recall), abs=1.5 / 90)  # float32 may flip a point on a ball's edge


def test_entropy_of_a_uniform_histogram_is_ln_k():
    labels = np.arange(1000) % 10
    assert class_entropy(labels) == pytest.approx(math.log(10))
    assert max_class_entropy() == pytest.approx(2.302585, abs=1e-6)
    assert class_entropy(np.arange(12) % 4, classes=4) == pytest.approx(math.log(4))


def test_entropy_of_one_class_is_zero_and_probabilities_count_their_argmax():
    assert class_entropy(np.full(50, 3)) == 0.0
    probabilities = np.eye(10, dtype=np.float32)[np.arange(100) % 2] * 0.9 + 0.01  # half class 0, half class 1
    assert class_entropy(probabilities) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: class_entropy(np.array([0, 10])), r"labels must lie in 0..9"),
        (lambda: class_entropy(np.zeros((5, 3))), r"probabilities must be \[n, 10\]"),
        (lambda: class_entropy(np.array([], np.int64)), "empty"),
        (lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))), "same features"),
        (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), "at least 2 rows"),
        (lambda: frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3))), "finite"),
        (lambda: precision_recall(np.zeros((3, 2)), np.zeros((9, 2)), k=3), "k must be an integer"),
        (lambda: precision_recall(np.zeros((9, 2)), np.zeros((9, 2)), chunk=0), "chunk must be"),
    ],
)
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()
