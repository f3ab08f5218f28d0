"""The self test: decode the golden inputs model.json records and compare with the outputs it recorded.

The outputs were recorded on the exporting machine's engine; another CPU's
kernels may move them by the precision's cross-engine bound
(docs/determinism.md), so the check allows that much, and no less than the
card says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .card_parts import GoldenCheck
from .engine import CROSS_ENGINE
from .sessions import DEFAULT_BATCH_SIZE, ModelSessions


@dataclass(frozen=True)
class SelfTestResult:
    passed: bool
    max_abs_diff: float
    tolerance: float
    checks: int


def selftest(sessions: ModelSessions) -> SelfTestResult:
    """This engine's outputs for the card's golden inputs against the recorded ones (a NaN difference fails)."""
    card = sessions.card
    golden = card.golden
    images, noise_images = golden_outputs(sessions, golden)
    diff = float(np.max(np.abs(images - np.asarray(golden.images, np.float32)))) if len(images) else 0.0
    checks = len(images)
    if noise_images is not None:
        diff = max(diff, float(np.max(np.abs(noise_images - np.asarray(golden.noise_images, np.float32)))))
        checks += len(noise_images)
    tolerance = max(golden.tolerance, CROSS_ENGINE[card.precision].max_abs)
    return SelfTestResult(diff <= tolerance, diff, tolerance, checks)


def golden_outputs(sessions: ModelSessions, golden: GoldenCheck) -> tuple[np.ndarray, np.ndarray | None]:
    """This engine's outputs for GOLDEN's inputs, one flat row per input: the images of its latents (with its
    label rows, fed as they are: they may be blends no label spec names), and of its noise through the prior
    (None for a model without a prior)."""
    card = sessions.card
    z = np.asarray(golden.latents, np.float32).reshape(len(golden.latents), card.latent_dim)
    rows = np.asarray(golden.labels, np.float32) if card.classes else None
    images = _decode_in_batches(sessions, z, rows).reshape(len(z), -1)
    if card.prior is None:
        return images, None
    noise = np.asarray(golden.noise, np.float32)
    prior_z = np.ascontiguousarray(sessions.prior(noise), np.float32)
    return images, _decode_in_batches(sessions, prior_z, rows).reshape(len(noise), -1)


def _decode_in_batches(sessions: ModelSessions, z: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """Decode in the generator's default batches, as the exporter recorded them."""
    parts = [
        sessions.decode(z[lo : lo + DEFAULT_BATCH_SIZE], None if rows is None else rows[lo : lo + DEFAULT_BATCH_SIZE])
        for lo in range(0, len(z), DEFAULT_BATCH_SIZE)
    ]
    return np.concatenate(parts) if parts else np.empty((0, *sessions.card.image_shape), np.float32)
