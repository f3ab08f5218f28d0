"""The exceptions vae_gen raises on purpose.

Every error a user can cause is one of these, with a one-line message that
names the bad value and what is allowed. Anything else escaping is a bug.
"""

from __future__ import annotations

from typing import Protocol


class VaeGenError(Exception):
    """Base class of every error vae_gen raises on purpose."""


class ModelNotFoundError(VaeGenError):
    """A model name or folder that does not exist."""


class ModelCardError(VaeGenError):
    """model.json is missing, unreadable, incomplete or of an unknown format."""


class ModelIntegrityError(VaeGenError):
    """A model file whose checksum, inputs or outputs disagree with model.json."""


class InvalidArgumentError(VaeGenError, ValueError):
    """An argument outside its allowed range (count, seed, temperature, ...)."""


class OutputError(VaeGenError):
    """An output path that cannot be written as asked."""


class OutOfMemoryError(VaeGenError, MemoryError):
    """An allocation failed (Python, onnxruntime or the loader): the process needs more memory than it may use."""


class MissingExtraError(VaeGenError):
    """A command that needs the optional `train` extra (TensorFlow, tf2onnx)."""


class Cancelled(VaeGenError):
    """A run stopped because its cancel event was set (Ctrl-C or SIGTERM, in the CLI).

    Raised between files, never inside one: every file written is complete.
    """


class CancelEvent(Protocol):
    """What a cancel argument must offer: threading.Event, multiprocessing's Event, or your own."""

    def is_set(self) -> bool: ...


def raise_if_cancelled(cancel: CancelEvent | None) -> None:
    """The safe points of a run call this: between files and between batches."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("every file written so far is complete")
