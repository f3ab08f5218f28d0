"""The check that guards every command needing the `train` extra."""

from __future__ import annotations

import importlib.util
import logging
import os

from ..errors import MissingExtraError

TRAIN_EXTRA_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx")


def require_train_extra(command: str) -> None:
    """Raise MissingExtraError naming the missing modules, without importing any of them."""
    missing = [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"'{command}' needs the train extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'vae-gen[train]'"
        )


#: The loggers of the train extra's libraries that speak up at start-up and during conversion.
CHATTY_LOGGERS = ("tensorflow", "absl", "tf2onnx", "h5py")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's C++ start-up lines and the train extra's INFO logs off the terminal, unless verbose.

    Called by the CLI before the train extra is imported: TensorFlow reads
    TF_CPP_MIN_LOG_LEVEL once, at import. A level set by the user wins.
    """
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")  # before vae_gen.train's own default of 2 applies
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


SERVE_EXTRA_MODULES = ("fastapi", "uvicorn", "multipart")


def require_serve_extra(command: str = "serve") -> None:
    """Raise MissingExtraError naming the missing modules of the serve extra, without importing any of them."""
    missing = [name for name in SERVE_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"'{command}' needs the serve extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'vae-gen[serve]'"
        )
