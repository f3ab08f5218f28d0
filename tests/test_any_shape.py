"""The runtime for any image shape: committed tiny fixtures (RGB 16x16 in [-1, 1]; grayscale 20x12, no encoder).

These run without TensorFlow: the fixtures are ONNX files and model.json,
made by tests/fixtures/make_fixtures.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae_gen
from vae_gen.bulk import generate_run
from vae_gen.cli.commands import main

FIXTURES = Path(__file__).parent / "fixtures"
RGB = FIXTURES / "tiny-rgb-16x16"
GRAY = FIXTURES / "tiny-gray-20x12"


@pytest.fixture(scope="module")
def rgb() -> vae_gen.Generator:
    return vae_gen.load(RGB)


@pytest.fixture(scope="module")
def gray() -> vae_gen.Generator:
    return vae_gen.load(GRAY)


def test_fixtures_load_and_pass_their_golden_checks(rgb, gray):
    assert rgb.image_shape == (16, 16, 3) and rgb.uint8_shape == (16, 16, 3) and rgb.value_range == (-1.0, 1.0)
    assert gray.image_shape == (20, 12, 1) and gray.uint8_shape == (20, 12) and not gray.has_encoder
    assert rgb.selftest().passed and gray.selftest().passed


def test_uint8_images_map_the_value_range_to_0_255(rgb):
    z = rgb.latents(64, seed=1)
    floats = rgb.decode(z)
    assert floats.shape == (64, 16, 16, 3) and floats.min() >= -1 and floats.max() <= 1
    expected = np.clip(np.rint((floats + 1) * 127.5), 0, 255).astype(np.uint8)
    assert np.array_equal(rgb.decode_uint8(z), expected)
    assert np.array_equal(rgb.generate(64, seed=1), expected)


@pytest.mark.parametrize(("model", "shape"), [(RGB, (16, 16, 3)), (GRAY, (20, 12))])
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_array_files_hold_the_images_in_their_own_shape(model, shape, suffix, tmp_path):
    out = tmp_path / f"images{suffix}"
    assert main(["sample", "--model", str(model), "-n", "50", "--seed", "4", "--out", str(out)]) == 0
    loaded = np.load(out)
    array = loaded if suffix == ".npy" else loaded["images"]
    assert array.shape == (50, *shape) and array.dtype == np.uint8  # the header agrees with the bytes
    assert np.array_equal(array, vae_gen.load(model).generate(50, seed=4))


@pytest.mark.parametrize(("model", "mode"), [(RGB, "RGB"), (GRAY, "L")])
def test_pngs_are_rgb_or_grayscale_with_the_arrays_pixels(model, mode, tmp_path):
    argv = ["sample", "--model", str(model), "-n", "6", "--out", str(tmp_path / "png"), "--grid", str(tmp_path / "g.png")]
    assert main(argv) == 0
    generated = vae_gen.load(model).generate(6, seed=0)
    for i in range(6):
        with Image.open(tmp_path / "png" / f"{i:06d}.png") as picture:
            assert picture.mode == mode
            assert np.array_equal(np.asarray(picture), generated[i])
    with Image.open(tmp_path / "g.png") as sheet:
        assert sheet.mode == mode


def test_generate_pil_gives_the_models_mode(rgb, gray):
    assert [p.mode for p in rgb.generate_pil(2)] == ["RGB", "RGB"] and rgb.generate_pil(1)[0].size == (16, 16)
    assert gray.generate_pil(1)[0].mode == "L" and gray.generate_pil(1)[0].size == (12, 20)


@pytest.mark.parametrize("model", [RGB, GRAY])
def test_latent_tools_work_for_any_shape(model, tmp_path):
    latent = str(vae_gen.load(model).latent_dim)
    assert main(["interpolate", "--model", str(model), "--steps", "4", "--out", str(tmp_path / "i.gif")]) == 0
    assert main(["manifold", "--model", str(model), "--size", "3", "--out", str(tmp_path / "m.png")]) == 0
    assert main(["walk", "--model", str(model), "--legs", "2", "--frames-per-leg", "2", "--out", str(tmp_path / "w.gif")]) == 0
    assert latent and all((tmp_path / name).stat().st_size > 0 for name in ("i.gif", "m.png", "w.gif"))


def test_reconstruct_converts_pictures_to_an_rgb_models_size_and_range(rgb, tmp_path):
    photo = np.zeros((40, 30, 3), np.uint8)
    photo[10:30, 5:25] = (250, 120, 10)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(["reconstruct", str(tmp_path / "photo.png"), "--model", str(RGB), "--variations", "1",
                 "--out", str(tmp_path / "r.png")]) == 0  # fmt: skip
    with Image.open(tmp_path / "r.png") as sheet:
        assert sheet.mode == "RGB" and sheet.size == (2 + 3 * (16 + 2), 2 + 16 + 2)
    z_mean, z_log_var = rgb.encode(np.zeros((2, 16, 16, 3), np.float32))
    assert z_mean.shape == z_log_var.shape == (2, 3)


def test_a_decoder_only_model_generates_and_says_it_cannot_encode(gray, tmp_path, capsys):
    assert gray.generate(3).shape == (3, 20, 12)
    Image.new("L", (12, 20)).save(tmp_path / "x.png")
    assert main(["reconstruct", str(tmp_path / "x.png"), "--model", str(GRAY), "--out", str(tmp_path / "r.png")]) == 2
    assert "has no encoder" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


def test_info_shows_shape_origin_and_missing_metrics(capsys):
    assert main(["info", "--model", str(GRAY)]) == 0
    out = capsys.readouterr().out
    assert "images:        20x12x1, values 0..1" in out and "encoder:       none" in out
    assert "test metrics:  none measured" in out and "origin:        imported from Keras files" in out
    card = json.loads((GRAY / "model.json").read_text())
    assert card["format_version"] == 2 and card["encoder"] is None and card["test_metrics"] == {}


def test_bulk_runs_and_shards_work_in_colour(tmp_path):
    full = tmp_path / "full"
    generate_run(vae_gen.load(RGB), full, 100, seed=2, batch_size=16, workers=0)
    sharded = tmp_path / "sharded"
    for k in range(3):
        generate_run(vae_gen.load(RGB), sharded, 100, seed=2, batch_size=16, shard=(k, 3), workers=0)
    assert {p.name: p.read_bytes() for p in full.glob("*.png")} == {p.name: p.read_bytes() for p in sharded.glob("*.png")}
