"""Folders exported from the VAE shapes people write (a logits decoder; a fused encoder output with the label tiled
into its channels and concat(z, label) into the decoder) run in the runtime like any other: no TensorFlow here.
The shapes were turned into the runtime's contract inside the graphs (tests/fixtures/make_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae_gen
from vae_gen.cli.commands import main

FIXTURES = Path(__file__).parent / "fixtures"
LOGITS, FUSED = FIXTURES / "tiny-logits", FIXTURES / "tiny-fused"


def test_a_logits_decoder_folder_decodes_images_in_0_1():
    generator = vae_gen.load(LOGITS)  # the golden self-check runs on load
    assert generator.card.origin["decoder_output"] == "logits" and generator.card.value_range == (0.0, 1.0)
    z = np.random.default_rng(0).normal(0.0, 4.0, (256, generator.latent_dim)).astype(np.float32)
    images = generator.decode(z)
    # Far-out latents drive the logits well past 0 both ways: only their sigmoid stays inside (0, 1).
    assert images.shape == (256, 8, 8, 1) and 0.0 < images.min() < 0.1 and 0.9 < images.max() < 1.0
    assert generator.generate(16, seed=0).dtype == np.uint8


def test_a_logits_decoder_folder_reconstructs_from_the_command_line(tmp_path):
    picture = tmp_path / "square.png"
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 2)).save(picture)
    assert main(["reconstruct", str(picture), "--model", str(LOGITS), "--out", str(tmp_path / "r.png")]) == 0
    assert min(Image.open(tmp_path / "r.png").size) >= 8  # the picture beside its reconstruction


def test_a_fused_tiled_conditional_folder_takes_the_label_as_any_conditional_model():
    generator = vae_gen.load(FUSED)
    origin = generator.card.origin
    assert origin["encoder_outputs"] == "fused" and origin["encoder_label"] == "tiled"
    assert origin["decoder_label"] == "concatenated" and generator.classes == ("left", "right")
    assert generator.card.decoder.inputs == ("z", "label") and generator.card.encoder is not None
    assert generator.card.encoder.inputs == ("image", "label")  # the graph tiles the label itself
    left, right = (generator.generate(8, seed=0, label=name) for name in ("left", "right"))
    assert left.shape == (8, 8, 8) and not np.array_equal(left, right)  # the label reaches the decoder
    images = left[..., None].astype(np.float32) / 255.0
    mean_left, log_var_left = generator.encode(images, label="left")
    mean_right, _ = generator.encode(images, label="right")
    assert mean_left.shape == log_var_left.shape == (8, 3) and not np.array_equal(mean_left, mean_right)
    assert not np.array_equal(mean_left, log_var_left)  # the two halves of the fused output, not one twice


@pytest.mark.tensorflow
@pytest.mark.parametrize("folder", [LOGITS, FUSED], ids=["logits", "fused"])
def test_parity_reads_the_shapes_back_from_the_card(folder, capsys):
    assert main(["parity", str(folder)]) == 0, capsys.readouterr().err


def test_info_says_how_the_graphs_were_made_from_the_keras_shapes(capsys):
    assert main(["info", "--model", str(FUSED)]) == 0
    origin = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("origin:"))
    assert "one fused encoder output (z_mean first)" in origin and "the decoder takes concat(z, label)" in origin
    assert "the encoder takes the label tiled over the image" in origin
    assert main(["info", "--model", str(LOGITS)]) == 0
    assert "the decoder outputs logits (the graph applies the sigmoid)" in capsys.readouterr().out
