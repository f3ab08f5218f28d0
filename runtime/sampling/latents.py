"""Seeded N(0, I) latents where image i depends only on (seed, i).

Latents come in fixed blocks of LATENT_BLOCK images. Block b is drawn from
its own Philox stream, keyed by the seed with b in the counter's top word,
so streams never overlap and any block can be drawn without the ones before
it. That is what lets a run start at any index or be split into shards and
still reproduce, byte for byte, the images of one full run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..core.checks import check_integer, shown
from ..errors import InvalidArgumentError

#: Images per independent random stream (decode batches are set apart from it, by batch size).
LATENT_BLOCK = 256
#: Seeds are unsigned 64-bit integers.
MAX_SEED = 2**64 - 1


def check_seed(seed: object) -> int:
    return check_integer(seed, 0, MAX_SEED, "seed")


#: Latents 100 standard deviations out decode to noise already; beyond, float32 overflows.
MAX_TEMPERATURE = 100.0


def check_temperature(temperature: object) -> float:
    message = f"temperature must be a number > 0 and <= {MAX_TEMPERATURE:g}, got {shown(temperature)}"
    if not isinstance(temperature, (int, float, np.integer, np.floating)):  # not "1": a number, as HTTP's is
        raise InvalidArgumentError(message)
    try:
        value = float(temperature)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(message) from None
    if isinstance(temperature, bool) or not 0 < value <= MAX_TEMPERATURE:  # NaN fails too
        raise InvalidArgumentError(message)
    return value


def latent_block(seed: int, block: int, latent_dim: int) -> np.ndarray:
    """The LATENT_BLOCK x latent_dim float32 standard normals of one block."""
    bit_generator = np.random.Philox(key=seed, counter=[0, 0, 0, block])
    return np.random.Generator(bit_generator).standard_normal((LATENT_BLOCK, latent_dim), dtype=np.float32)


def block_ranges(start: int, stop: int, block: int = LATENT_BLOCK) -> Iterator[tuple[int, int]]:
    """Split [start, stop) at multiples of `block` counted from index 0."""
    lo = start
    while lo < stop:
        hi = min(stop, (lo // block + 1) * block)
        yield lo, hi
        lo = hi


def sample_latents(seed: int, start: int, stop: int, latent_dim: int, temperature: float = 1.0) -> np.ndarray:
    """Latents of images [start, stop) as float32 [stop - start, latent_dim], scaled by temperature.

    Takes its arguments as checked (`check_seed`, `check_temperature`, a request's range): it runs once per
    batch, below the edge that checked them."""
    parts = []
    for lo, hi in block_ranges(start, stop):
        block = lo // LATENT_BLOCK
        offset = block * LATENT_BLOCK
        parts.append(latent_block(seed, block, latent_dim)[lo - offset : hi - offset])
    z = np.concatenate(parts) if parts else np.zeros((0, latent_dim), np.float32)
    if temperature != 1.0:
        z = z * np.float32(temperature)
    return z
