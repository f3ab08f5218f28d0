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

from pathlib import Path

from .errors import (
    InvalidArgumentError,
    MissingExtraError,
    ModelCardError,
    ModelIntegrityError,
    ModelNotFoundError,
    OutputError,
    VaeGenError,
)
from .generator import Generator, SelfTestResult
from .latents import LATENT_BLOCK, MAX_SEED
from .model_card import FORMAT_VERSION, ModelCard
from .model_store import DEFAULT_MODEL, list_models, resolve_model

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "LATENT_BLOCK",
    "MAX_SEED",
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


def load(model: str | Path | None = None, **options) -> Generator:
    """Load a model (shipped name, folder path, or None for DEFAULT_MODEL); see `Generator` for options."""
    return Generator(model, **options)
