"""Shared fixtures. Tests marked `tensorflow` are skipped where the train extra is missing,
so the same suite runs in the full environment and in the runtime-only one."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

HAS_TRAIN_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras", "tf2onnx", "onnx"))
#: Set by tests/run_all.sh for the second run, in the venv holding only the base install.
RUNTIME_ONLY = os.environ.get("VAE_GEN_RUNTIME_ONLY") == "1"

#: The seeds' dense model: latent 2 and 0.2 MFLOP per image. Tests that need a 2-D latent,
#: or that push 100,000 images through, name it; the rest use the default model.
DENSE2 = "fashion-mnist-dense2"

TINY_TRAIN_IMAGES = 2000
TINY_TEST_IMAGES = 500


def pytest_collection_modifyitems(config, items):
    if HAS_TRAIN_EXTRA:
        return
    skip = pytest.mark.skip(reason="needs the train extra (TensorFlow, tf2onnx)")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A dense VAE trained one epoch on the first 2,000 training images."""
    from vae_gen.train.fit import TrainSettings, train

    out = tmp_path_factory.mktemp("tiny") / "run"
    settings = TrainSettings(epochs=1, train_limit=TINY_TRAIN_IMAGES, test_limit=TINY_TEST_IMAGES, seed=0, batch_size=128)
    train(settings, out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_run, tmp_path_factory) -> Path:
    """The tiny run exported to a model folder (parity-gated)."""
    from vae_gen.export.exporter import export_run

    out = tmp_path_factory.mktemp("tiny-model") / "tiny"
    export_run(tiny_run, out, name="tiny", description="test fixture")
    return out


@pytest.fixture
def shipped_model_copy(tmp_path) -> Path:
    """A writable copy of a shipped model folder, for tests that damage it: fashion-mnist-residual32 (the default
    until 2026-12-04), whose card is format 1, so these tests also keep proving that the oldest format loads."""
    from vae_gen import resolve_model

    target = tmp_path / "model"
    shutil.copytree(resolve_model("fashion-mnist-residual32"), target)
    return target
