"""Golden outputs: what the shipped models must keep generating, as far as each promise of determinism goes.

- Latents are bit-exact on every machine: their digests are compared everywhere.
- Images are within the cross-engine tolerance of the model's precision on any CPU: golden arrays (a few
  images per case, float output and uint8) recorded on one machine are compared with it.
- Image bytes are identical on one engine (CPU features, onnxruntime, numpy): the digests of whole cases are
  compared only where the engine that recorded them is the engine running the test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import vae_gen
from vae_gen.model.engine import CROSS_ENGINE, describe, engine_fingerprint
from vae_gen.sampling.generator import Generator

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from record import ARRAYS, CASES, DIGESTS, kept_outputs, latent_digests, model_digests

pytestmark = pytest.mark.portability

GOLDEN = json.loads(DIGESTS.read_text())
ARRAYS_NPZ = np.load(ARRAYS)
SAME_ENGINE = GOLDEN["engine"] == engine_fingerprint()


def test_latent_stream_is_unchanged():
    assert latent_digests() == GOLDEN["latents"]


def test_every_shipped_model_has_golden_outputs():
    assert set(vae_gen.list_models()) <= set(GOLDEN["models"])
    assert all(f"{name}/{case}/float" in ARRAYS_NPZ for name in vae_gen.list_models() for case in CASES)


def _violations(name: str, case: str) -> list[str]:
    generator = vae_gen.load(name)
    got_float, got_uint8 = kept_outputs(generator, case)
    tolerance = CROSS_ENGINE[generator.card.precision]
    return tolerance.violations(
        ARRAYS_NPZ[f"{name}/{case}/float"], got_float, ARRAYS_NPZ[f"{name}/{case}/uint8"], got_uint8
    )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", vae_gen.list_models())
def test_shipped_model_outputs_are_within_the_cross_engine_tolerance(name, case):
    assert _violations(name, case) == []


@pytest.mark.skipif(not SAME_ENGINE, reason=f"digests recorded on {describe(GOLDEN['engine'])}, not this engine")
@pytest.mark.parametrize("name", vae_gen.list_models())
def test_shipped_model_bytes_are_unchanged_on_the_recording_engine(name):
    assert model_digests(name) == GOLDEN["models"][name]


def test_the_tolerance_catches_truncating_instead_of_rounding(monkeypatch):
    """A real regression (floor instead of round: about a third of the pixels one level darker) fails."""

    def truncating(self, images):
        low, high = self.card.value_range
        out = np.clip(np.floor((images - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
        return out[..., 0] if out.shape[-1] == 1 else out

    monkeypatch.setattr(Generator, "to_uint8", truncating)
    problems = _violations(vae_gen.DEFAULT_MODEL, "seed0_n64")
    assert problems and "pixels differ" in problems[0]


def test_the_tolerance_catches_a_drift_of_the_float_output():
    """A decoder whose output moved by 1e-4 (ten times the float32 bound) fails, though few pixels change level."""
    name, case = vae_gen.DEFAULT_MODEL, "seed0_n64"
    expected = ARRAYS_NPZ[f"{name}/{case}/float"]
    moved = np.clip(expected + 1e-4, 0.0, 1.0)
    uint8 = ARRAYS_NPZ[f"{name}/{case}/uint8"]
    problems = CROSS_ENGINE["float32"].violations(expected, moved, uint8, uint8)
    assert problems and problems[0].startswith("float output differs by up to 0.0001")
