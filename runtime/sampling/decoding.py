"""Decoding checked latents in batches: each batch's label rows, class guidance's second call, uint8 pixels.

Batches are `batch_size` latents counted from the first; with guidance a
batch takes two decoder calls (its labels, then the all-class average).
"""

from __future__ import annotations

import numpy as np

from ..model.sessions import ModelSessions
from .guidance import guided, uniform_rows
from .labels import Labels


def decode_batches(
    sessions: ModelSessions, z: np.ndarray, labels: Labels | None, first: int, batch_size: int, guidance: float = 0.0
) -> np.ndarray:
    """Decode checked latents of images first..first+len(z)-1, labelled by `labels`, with checked `guidance`:
    float32 [len(z), H, W, C] in the card's value range."""
    decode, card = sessions.decode, sessions.card

    def run(lo: int, hi: int) -> np.ndarray:
        if labels is None:
            return decode(z[lo:hi], None)
        conditioned = decode(z[lo:hi], labels.rows(first + lo, first + hi))
        if not guidance:
            return conditioned
        unconditioned = decode(z[lo:hi], uniform_rows(hi - lo, len(labels.classes)))
        return guided(conditioned, unconditioned, guidance, card.value_range)

    if len(z) <= batch_size:
        return run(0, len(z))
    out = np.empty((len(z), *card.image_shape), np.float32)
    for lo in range(0, len(z), batch_size):
        out[lo : lo + batch_size] = run(lo, min(lo + batch_size, len(z)))
    return out


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map decoder output in value_range to uint8 (round half to even, clip), dropping a single channel."""
    low, high = value_range
    scaled = (images - np.float32(low)) * np.float32(255.0 / (high - low))
    out: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out[..., 0] if out.shape[-1] == 1 else out
