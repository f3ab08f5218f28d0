"""The one check behind every integer a user hands us: seeds, counts, indices, batch sizes."""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError


def check_integer(value: object, low: int, high: int, what: str) -> int:
    """`value` as an int if it is an integer in [low, high] (not a bool); else InvalidArgumentError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise InvalidArgumentError(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return int(value)
