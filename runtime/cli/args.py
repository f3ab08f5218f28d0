"""argparse value types: each parses one value or fails with a message naming it and what is allowed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..model.card_fields import FUSED_ENCODER_OUTPUTS
from ..sampling.latents import MAX_SEED


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum, with a message naming the bad value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def int_from_to(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (the bound, and `why`, in the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}{why}, got {text[:80]!r}")
        return value

    return parse


#: GIF frame delays are whole hundredths of a second: 100 frames per second is the fastest a GIF can say;
#: 0.1 (10 s per frame) the slowest vae-gen writes.
MIN_FPS, MAX_FPS = 0.1, 100.0


def frames_per_second(text: str) -> float:
    """An argparse type: a GIF frame rate in [MIN_FPS, MAX_FPS]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_FPS <= value <= MAX_FPS:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"must be a number from {MIN_FPS:g} to {MAX_FPS:g} (GIF delays are hundredths of a second), got {text[:80]!r}"
        )
    return value


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0, with a message naming the bad value."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def guidance_value(text: str) -> float:
    """An argparse type: class guidance, as vae_gen.sampling.guidance checks it, with a message naming the text given."""
    from ..sampling.guidance import MAX_GUIDANCE, guidance_number

    try:
        return guidance_number(float(text))
    except ValueError:  # not a number, or vae_gen.sampling.guidance refused it (InvalidArgumentError is a ValueError)
        raise argparse.ArgumentTypeError(f"must be a number from 0 to {MAX_GUIDANCE:g}, got {text!r}") from None


def value_range(text: str) -> tuple[float, float]:
    """LOW,HIGH: 0,1 or -1,1 (write --value-range=-1,1 or -1,1 after it: vae-gen keeps it a value)."""
    allowed = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}
    if text.replace(" ", "") not in allowed:
        raise argparse.ArgumentTypeError(f"must be 0,1 or -1,1, got {text!r}")
    return allowed[text.replace(" ", "")]


def _integers(text: str, count: int, minimum: int, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or any(v < minimum for v in values):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return values


def image_shape(text: str) -> tuple[int, int, int]:
    """H,W,C: the image shape of a flat decoder output."""
    h, w, c = _integers(text, 3, 1, "H,W,C with positive integers (C is 1 or 3)")
    return h, w, c


def output_positions(text: str) -> tuple[int, int] | str:
    """MEAN,LOG_VAR: positions among a model's outputs; or fused / fused-log-var-first: one output holding both."""
    if text in FUSED_ENCODER_OUTPUTS:
        return text
    fused = " or ".join(FUSED_ENCODER_OUTPUTS)
    mean, log_var = _integers(text, 2, 0, f"MEAN,LOG_VAR, two output positions such as 0,1, or {fused}")
    return mean, log_var
