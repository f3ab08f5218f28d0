"""Which latent dimensions a model's decoder actually uses: the web page's sliders show those first.

A VAE usually leaves some of its latent dimensions unused (the KL term pulls
their posterior onto the prior, so the decoder learns to ignore them): a
slider on such a dimension moves nothing. The usual measure of a dimension's
activity ("active units", Burda et al. 2016) is the variance over the data of
the encoder's mean, Var_x(E[z_d | x]). The runtime has no dataset, so its data
are the decoder's own images: ACTIVITY_SAMPLES seeded latents (N(0, I), or
through the model's prior when it has one), decoded and encoded again. A dimension the decoder ignores leaves no trace in the
image, so encode(decode(z)) gives it the same mean for every image (variance
near 0); a dimension it uses comes back following z (variance near 1).

A class-conditional model decodes and re-encodes image i with class i mod K
(label "all"), so every class has its share of the samples.

A decoder-only model has no encoder to ask: its dimensions are listed in
order, and `measured` is False. The measure costs one decoding and one
encoding of ACTIVITY_SAMPLES images, so callers compute it once per model
and keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.constants import ACTIVITY_SAMPLES, ACTIVITY_SEED
from .generator import Generator
from .labels import ALL_CLASSES


@dataclass(frozen=True)
class LatentActivity:
    """How much a model's decoder uses each latent dimension."""

    #: Variance of the encoder's z_mean per dimension, in dimension order; None when not measured.
    variances: tuple[float, ...] | None
    #: Every dimension index once, most active first (ties in index order); 0, 1, ... when not measured.
    order: tuple[int, ...]
    #: Decoded samples behind the variances (0 when not measured) and the seed they were drawn with.
    samples: int
    seed: int

    @property
    def measured(self) -> bool:
        return self.variances is not None


def latent_activity(generator: Generator, samples: int = ACTIVITY_SAMPLES, seed: int = ACTIVITY_SEED) -> LatentActivity:
    """Measure `generator`'s latent activity from `samples` images of `seed` (see the module docstring)."""
    if not generator.has_encoder:
        return LatentActivity(None, tuple(range(generator.latent_dim)), 0, seed)
    label = ALL_CLASSES if generator.classes else None
    z_mean, _ = generator.encode(generator.decode(generator.latents(samples, seed), label=label), label=label)
    variances = np.var(z_mean.astype(np.float64), axis=0)
    order = np.argsort(-variances, kind="stable")
    return LatentActivity(tuple(float(v) for v in variances), tuple(int(d) for d in order), samples, seed)
