"""The checks behind values a user hands us: integers (seeds, counts, indices, batch sizes) and arrays
(latents, noise, images), and how a bad value is shown in the one-line error that refuses it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError

#: A bad value is shown in an error message up to this many characters of its repr (a 100 KB string is not echoed).
SHOWN_CHARACTERS = 80


def shown(value: object) -> str:
    """`value` for an error message: its repr (which escapes control characters), cut to SHOWN_CHARACTERS."""
    try:
        text = repr(value)
    except Exception:  # a caller's object whose __repr__ fails
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def check_integer(value: object, low: int, high: int, what: str) -> int:
    """`value` as an int if it is an integer in [low, high] (not a bool); else InvalidArgumentError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise InvalidArgumentError(f"{what} must be an integer from {low} to {high}, got {shown(value)}")
    return int(value)


def numeric_array(value: object, what: str) -> np.ndarray:
    """`value` (an array or nested sequences) as a numpy array of numbers; InvalidArgumentError naming `what` when
    its rows are ragged or it holds anything but numbers, before any other numpy code sees it."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged rows, huge ints, hostile objects
        raise InvalidArgumentError(f"{what} must be an array of numbers whose rows are equally long") from None
    if array.dtype.kind not in "fiu":  # floats, signed and unsigned integers; not bool, complex, str or object
        raise InvalidArgumentError(f"{what} must hold numbers, got {array.dtype.name} values")
    return array


def check_path(value: object, what: str) -> Path:
    """`value` as a Path if it is a str or os.PathLike naming a path without NUL bytes; else InvalidArgumentError."""
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{what} must be a path (str or os.PathLike), got {type(value).__name__}")
    if "\x00" in text:
        raise InvalidArgumentError(f"{what} must not contain a NUL byte, got {shown(text)}")
    return Path(text)


def check_callbacks(progress: object, cancel: object) -> None:
    """progress: None or a callable(done, total); cancel: None or an event with is_set(); else InvalidArgumentError."""
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be None or a callable(done, total), got {type(progress).__name__}")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise InvalidArgumentError(
            f"cancel must be None or an event with is_set() (threading.Event), got {type(cancel).__name__}"
        )
