"""Golden outputs: the same seeds give the same bytes as when they were recorded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import vae_gen

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from record import latent_digests, model_digests

GOLDEN = json.loads((Path(__file__).parent / "golden" / "digests.json").read_text())


def test_latent_stream_is_unchanged():
    assert latent_digests() == GOLDEN["latents"]


def test_every_shipped_model_has_golden_outputs():
    assert set(vae_gen.list_models()) <= set(GOLDEN["models"])


@pytest.mark.parametrize("name", vae_gen.list_models())
def test_shipped_model_outputs_are_unchanged(name):
    assert model_digests(name) == GOLDEN["models"][name]
