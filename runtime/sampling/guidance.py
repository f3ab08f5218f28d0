"""Class guidance: push a conditional model's image further toward the class asked for.

With guidance w, an image decoded from (z, label) becomes

    clip(D(z, label) + w * (D(z, label) - D(z, uniform)), value range)

where `uniform` is the label row that weighs every class 1/K: D(z, uniform)
is the same z drawn as no class in particular, so the difference holds what
makes the image that class (a coat's front opening, a sandal's straps), and
w > 0 amplifies it. It is classifier-free guidance (Ho & Salimans, 2021)
applied to the decoder's output instead of a diffusion step's noise
estimate. w = 0 is the model's own decoder output, byte for byte.

Why: a VAE's images are the decoder's mean, softer than real ones, and the
details that tell similar classes apart (Coat from Pullover, Shirt from
T-shirt/top) are the first to blur. Guidance restores them, at the price of
a second decoder call per image and contrast a little higher than the data's
(benchmarks/class_accuracy.py measures how often the class asked for is
what a classifier sees, and the Fréchet distance, for each w).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidArgumentError

#: The largest guidance accepted: beyond a few, images only saturate further.
MAX_GUIDANCE = 10.0


def check_guidance(guidance: object, classes: tuple[str, ...], model: str) -> float:
    """`guidance` as a float in [0, MAX_GUIDANCE]; any other value, or guidance > 0 for a model without classes,
    is an InvalidArgumentError."""
    value = guidance_number(guidance)
    if value and not classes:
        raise InvalidArgumentError(f"guidance={value:g} needs a class-conditional model; {model!r} has no classes")
    return value


def guidance_number(guidance: object) -> float:
    """`guidance` as a float in [0, MAX_GUIDANCE], whatever the model; else an InvalidArgumentError."""
    message = f"guidance must be a number >= 0 and <= {MAX_GUIDANCE:g}, got {guidance!r}"
    if isinstance(guidance, bool):
        raise InvalidArgumentError(message)
    try:
        value = float(guidance)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(message) from None
    if math.isnan(value) or not 0.0 <= value <= MAX_GUIDANCE:
        raise InvalidArgumentError(message)
    return value + 0.0  # -0.0 becomes 0.0: one value, one run record and one ETag for the decoder's own output


def uniform_rows(n: int, classes: int) -> np.ndarray:
    """float32 [n, classes]: every class weighed 1/classes, the label of no class in particular."""
    return np.full((n, classes), 1.0 / classes, np.float32)


def guided(conditioned: np.ndarray, unconditioned: np.ndarray, guidance: float, value_range: tuple[float, float]) -> np.ndarray:
    """conditioned + guidance * (conditioned - unconditioned), clipped to the value range, in float32."""
    w = np.float32(guidance)
    out: np.ndarray = np.clip(conditioned + w * (conditioned - unconditioned), np.float32(value_range[0]),
                              np.float32(value_range[1]))  # fmt: skip
    return out.astype(np.float32, copy=False)
