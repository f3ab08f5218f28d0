"""Where models live: the shipped ones by name, any other by folder path."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFoundError
from .card import CARD_FILENAME

#: Used when no model is named.
DEFAULT_MODEL = "fashion-mnist-residual32-sharp-ac-samples"


def shipped_models_dir() -> Path:
    # The model folders are package data of vae_gen.models (the repo's models/).
    from .. import models

    return Path(models.__file__).parent


def list_models() -> list[str]:
    """Names of the models shipped inside the package, sorted."""
    root = shipped_models_dir()
    return sorted(p.name for p in root.iterdir() if (p / CARD_FILENAME).is_file())


def resolve_model(model: str | Path | None = None) -> Path:
    """A model folder for a shipped name, a folder path, or None (the default).

    A name of a shipped model wins over a folder of the same name in the
    current directory only when the argument has no path separator.
    """
    if model is None:
        model = DEFAULT_MODEL
    text = str(model)
    if not text:
        raise ModelNotFoundError(f"model name is empty; shipped models: {', '.join(list_models())}")
    looks_like_path = isinstance(model, Path) or "/" in text or "\\" in text or text.startswith(".")
    if not looks_like_path:
        folder = shipped_models_dir() / text
        if (folder / CARD_FILENAME).is_file():
            return folder
    folder = Path(text).expanduser()
    if folder.is_dir():
        return folder
    raise ModelNotFoundError(
        f"no model {text!r}: not a shipped model name ({', '.join(list_models()) or 'none shipped'}) "
        "nor an existing model folder"
    )
