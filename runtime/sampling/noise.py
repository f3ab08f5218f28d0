"""The noise an image is drawn from, and how it becomes latents: N(0, I) latents directly, or noise through a
folder's prior graph (a learned prior; docs/model-folder.md).

Temperature scales the noise, except a prior's leading coordinates that pick
a mixture's component (`unscaled_noise`): those stay as drawn.
"""

from __future__ import annotations

import numpy as np

from ..model.sessions import ModelSessions
from .latents import sample_latents


class Noise:
    """Noise of a model, with its prior graph when `use_prior` and the folder has one."""

    def __init__(self, sessions: ModelSessions, use_prior: bool) -> None:
        card = sessions.card
        self.prior = card.prior if use_prior else None
        #: The width of one image's noise: the prior's input, or the latent size without a prior.
        self.dim = card.latent_dim if self.prior is None else self.prior.noise_dim
        self._sessions = sessions

    def draw(self, seed: int, start: int, stop: int, temperature: float) -> np.ndarray:
        """The checked request's noise of images [start, stop): float32 [stop - start, dim], tempered."""
        noise = sample_latents(seed, start, stop, self.dim)
        if temperature == 1.0:
            return noise
        keep = 0 if self.prior is None else self.prior.unscaled_noise
        if not keep:
            scaled: np.ndarray = noise * np.float32(temperature)  # as sample_latents scales: the bytes of before
            return scaled
        out: np.ndarray = noise.copy()
        out[:, keep:] *= np.float32(temperature)
        return out

    def to_latents(self, noise: np.ndarray) -> np.ndarray:
        """Checked noise [n, dim] -> latents [n, latent_dim]: through the prior graph, or as they are."""
        return noise if self.prior is None else self._sessions.prior(noise)
