"""The golden self-check of a model folder: fixed inputs and the outputs its graphs gave when it was written.

`vae-gen selftest` (and serve's /readyz) decodes the card's golden latents
and compares with the recorded images, within the card's tolerance or its
precision's cross-engine bound (vae_gen.model.engine.CROSS_ENGINE), whichever is
larger. GOLDEN_ROWS rows are enough that a drift of the few pixels an int8
model moves across CPUs shows (about 0.05 % of pixels: some 6 of the
12,544 a 28x28 model's 16 rows hold), where 4 rows would usually miss it.

Re-record a folder's golden outputs with the current rule (its graphs, its
other fields and its bytes otherwise unchanged):

    python -m vae_gen.export.golden models/NAME [models/NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vae_gen.core.constants import GOLDEN_ROWS, GOLDEN_SEED
from vae_gen.model.card import ModelCard
from vae_gen.model.card_parts import GoldenCheck
from vae_gen.model.engine import CROSS_ENGINE
from vae_gen.model.selftest import golden_outputs


def _fixed_and_random_rows(width: int) -> np.ndarray:
    """All 0, GOLDEN_ROWS - 2 N(0, I) rows (seed GOLDEN_SEED), all 3.0: the centre, typical draws and a far point."""
    rng = np.random.default_rng(GOLDEN_SEED)
    return np.concatenate([
        np.zeros((1, width)),
        rng.standard_normal((GOLDEN_ROWS - 2, width)),
        np.full((1, width), 3.0),
    ]).astype(np.float32)  # fmt: skip


def golden_latents(latent_dim: int) -> np.ndarray:
    """The golden latents, [GOLDEN_ROWS, latent_dim]."""
    return _fixed_and_random_rows(latent_dim)


def golden_noise(noise_dim: int) -> np.ndarray:
    """The golden noise rows of a model with a prior, drawn as golden latents are."""
    return _fixed_and_random_rows(noise_dim)


def golden_labels(classes: int) -> np.ndarray:
    """Label rows fed with the golden latents: row i is class i mod K one-hot, the last row an even blend."""
    rows = np.zeros((GOLDEN_ROWS, classes), np.float32)
    rows[np.arange(GOLDEN_ROWS - 1), np.arange(GOLDEN_ROWS - 1) % classes] = 1.0
    rows[-1] = 1.0 / classes
    return rows


def _rows(array: np.ndarray, digits: int | None = None) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) if digits is None else round(float(v), digits) for v in row) for row in array)


def record_golden(folder: Path) -> ModelCard:
    """Decode FOLDER's golden inputs with its own graphs on this engine and write them into its model.json."""
    from vae_gen.sampling.generator import Generator

    generator = Generator(folder)
    card = generator.card
    z = golden_latents(card.latent_dim)
    noise = golden_noise(card.prior.noise_dim) if card.prior is not None else None
    golden = GoldenCheck(
        latents=_rows(z),
        images=(),
        tolerance=max(card.golden.tolerance, CROSS_ENGINE[card.precision].max_abs),
        labels=_rows(golden_labels(len(card.classes))) if card.classes else (),
        noise=() if noise is None else _rows(noise),
    )
    images, noise_images = golden_outputs(generator.sessions, golden)
    golden = dataclasses.replace(golden, images=_rows(images, 7))
    if noise_images is not None:
        golden = dataclasses.replace(golden, noise_images=_rows(noise_images, 7))
    card = dataclasses.replace(card, golden=golden)
    card.save(folder)
    result = Generator(folder).selftest()
    if not result.passed:  # cannot happen on the engine that just recorded them, unless a graph is not deterministic
        raise RuntimeError(f"{folder}: the re-recorded golden check fails (max abs difference {result.max_abs_diff:.3g})")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_gen.export.golden", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="model folders whose golden outputs to re-record")
    for folder in parser.parse_args(argv).folders:
        card = record_golden(folder)
        print(f"{folder}: {len(card.golden.latents)} golden rows recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
