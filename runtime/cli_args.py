"""argparse value types: each parses one value or fails with a message naming it and what is allowed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .latents import MAX_SEED


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


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text!r}")
    return value


def finite_float(minimum: float, inclusive: bool, below: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number above `minimum` (or equal to it, if inclusive) and, if given, below
    `below`, with a message naming the bad value."""
    relation = ">=" if inclusive else ">"
    # A number with an upper bound too is finite by its range, so the message need not say so.
    allowed = f"a finite number {relation} {minimum:g}" if below is None else f"a number {relation} {minimum:g} and < {below:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        in_range = value >= minimum if inclusive else value > minimum
        if not (math.isfinite(value) and in_range and (below is None or value < below)):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


positive_float = finite_float(0, inclusive=False)
non_negative_float = finite_float(0, inclusive=True)
#: A moving average's momentum: 0 (off) up to, not including, 1.
fraction_below_one = finite_float(0, inclusive=True, below=1)
