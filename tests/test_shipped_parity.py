"""Each shipped model re-checked against the Keras models it was exported from.

The Keras twins stay in the repository's models/ (the wheel ships only the
ONNX files and model.json), so this reads the checkout's folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_MODELS = Path(__file__).parents[1] / "models"
WITH_KERAS = sorted(p for p in REPO_MODELS.iterdir() if (p / "decoder.keras").is_file())


def test_every_float_model_has_its_keras_twins():
    assert {p.name for p in WITH_KERAS} >= {"fashion-mnist-dense2", "fashion-mnist-residual32"}


@pytest.mark.tensorflow
@pytest.mark.parametrize("folder", WITH_KERAS, ids=lambda p: p.name)
def test_shipped_model_matches_its_keras_models(folder):
    from vae_gen.core.constants import PARITY_TOLERANCE
    from vae_gen.export.parity import check_model_folder

    report = check_model_folder(folder)
    assert report.max_abs_diff <= PARITY_TOLERANCE
