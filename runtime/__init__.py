"""vae-gen: generate images with a small VAE decoder on CPU, using onnxruntime only.

    >>> import vae_gen
    >>> gen = vae_gen.load()                    # the default shipped model
    >>> images = gen.generate(16, seed=0)       # uint8 [16, 28, 28], 0 black .. 255 white
    >>> pictures = gen.generate_pil(4, seed=1)  # the same as PIL images

The same (seed, index) always gives the same image. Importing this package
loads neither TensorFlow nor any model; `load` reads and verifies a model
folder (see `ModelCard`) and creates its onnxruntime session.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    Cancelled,
    InvalidArgumentError,
    MissingExtraError,
    ModelCardError,
    ModelIntegrityError,
    ModelNotFoundError,
    OutputError,
    VaeGenError,
)

if TYPE_CHECKING:
    from .model.card import FORMAT_VERSION, ModelCard
    from .model.selftest import SelfTestResult
    from .model.store import DEFAULT_MODEL, list_models, resolve_model
    from .sampling.generator import Generator
    from .sampling.latents import LATENT_BLOCK, MAX_SEED

__version__ = "0.1.0"

# The rest of the API loads on first use: importing numpy alone takes 60 to
# 110 ms here, and `import vae_gen` should cost an app nothing until it
# generates. Each name maps to the module that defines it.
_LAZY = {
    "Generator": "sampling.generator",
    "SelfTestResult": "model.selftest",
    "LATENT_BLOCK": "sampling.latents",
    "MAX_SEED": "sampling.latents",
    "FORMAT_VERSION": "model.card",
    "ModelCard": "model.card",
    "DEFAULT_MODEL": "model.store",
    "list_models": "model.store",
    "resolve_model": "model.store",
}

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "LATENT_BLOCK",
    "MAX_SEED",
    "Cancelled",
    "Generator",
    "InvalidArgumentError",
    "MissingExtraError",
    "ModelCard",
    "ModelCardError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "OutputError",
    "SelfTestResult",
    "VaeGenError",
    "list_models",
    "load",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'vae_gen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load(model: str | Path | None = None, **options: Any) -> Generator:
    """Load a model (shipped name, folder path, or None for DEFAULT_MODEL); see `Generator` for options."""
    from .sampling.generator import Generator

    return Generator(model, **options)
