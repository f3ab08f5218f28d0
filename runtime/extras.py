"""The check that guards every command needing the `train` extra."""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

TRAIN_EXTRA_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx")


def require_train_extra(command: str) -> None:
    """Raise MissingExtraError naming the missing modules, without importing any of them."""
    missing = [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"'{command}' needs the train extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'vae-gen[train]'"
        )
