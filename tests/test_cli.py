"""The vae-gen command, called in-process through main(argv)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DENSE2
from PIL import Image

import vae_gen
from vae_gen.cli.commands import main


def _digest(paths) -> str:
    """One hash over the names and bytes of the PNGs among `paths`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in paths if p.suffix == ".png"):
        digest.update(path.name.encode() + Path(path).read_bytes())
    return digest.hexdigest()


def test_sample_png_folder(tmp_path):
    out = tmp_path / "samples"
    assert main(["sample", "-n", "16", "--seed", "0", "--out", str(out)]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(16)]
    with Image.open(files[0]) as picture:
        assert picture.size == (28, 28) and picture.mode == "L"
    expected = vae_gen.load().generate(16, seed=0)
    assert all(np.array_equal(np.asarray(Image.open(f)), expected[i]) for i, f in enumerate(files))


def test_same_seed_gives_identical_bytes(tmp_path):
    for run in ("a", "b"):
        assert main(["sample", "-n", "20", "--seed", "42", "--out", str(tmp_path / run)]) == 0
        assert main(["sample", "-n", "20", "--seed", "42", "--grid", str(tmp_path / f"{run}.png")]) == 0
    assert _digest((tmp_path / "a").iterdir()) == _digest((tmp_path / "b").iterdir())
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_sample_grid(tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", "-n", "16", "--seed", "0", "--grid", str(grid), "--scale", "2"]) == 0
    with Image.open(grid) as picture:
        # 4 x 4 tiles of 28 px with 2 px padding, upscaled 2x.
        assert picture.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))


def test_sample_npy(tmp_path):
    out = tmp_path / "images.npy"
    assert main(["sample", "-n", "1000", "--seed", "0", "--out", str(out)]) == 0
    images = np.load(out)
    assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, vae_gen.load().generate(1000, seed=0))


def test_sample_npz(tmp_path):
    out = tmp_path / "images.npz"
    assert main(["sample", "-n", "10", "--seed", "1", "--out", str(out)]) == 0
    with np.load(out) as archive:
        assert np.array_equal(archive["images"], vae_gen.load().generate(10, seed=1))


def test_sample_model_by_path(tmp_path):
    folder = vae_gen.resolve_model(None)
    assert main(["sample", "-n", "2", "--model", str(folder), "--out", str(tmp_path / "x.npy")]) == 0
    assert np.load(tmp_path / "x.npy").shape == (2, 28, 28)


def test_sample_refuses_folder_with_images(tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["sample", "-n", "3", "--out", str(out)]) == 0
    before = _digest(out.iterdir())
    assert main(["sample", "-n", "3", "--seed", "9", "--out", str(out)]) == 2
    assert "holds a run with a different seed" in capsys.readouterr().err
    assert _digest(out.iterdir()) == before
    assert main(["sample", "-n", "3", "--seed", "9", "--out", str(out), "--overwrite"]) == 0
    assert _digest(out.iterdir()) != before


def test_no_temporary_files_left(tmp_path):
    assert main(["sample", "-n", "5", "--out", str(tmp_path / "s"), "--grid", str(tmp_path / "g.png")]) == 0
    assert main(["sample", "-n", "5", "--out", str(tmp_path / "a.npy")]) == 0
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "-n", "0", "--grid", "g.png"], "--count: must be an integer >= 1, got '0'"),
        (["sample", "-n", "x", "--grid", "g.png"], "--count: must be an integer >= 1"),
        (["sample", "--seed", "-1", "--grid", "g.png"], "--seed: must be an integer from 0 to"),
        (["sample", "--seed", str(2**64), "--grid", "g.png"], "--seed: must be an integer from 0 to"),
        (["sample", "--temperature", "0", "--grid", "g.png"], "--temperature: must be a finite number > 0"),
        (["sample", "--temperature", "nan", "--grid", "g.png"], "--temperature: must be a finite number > 0"),
        (["sample", "--threads", "0", "--grid", "g.png"], "--threads: must be an integer from 1 to 256"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "-n", "2"], "nothing to write"),
        (["sample", "-n", "2", "--model", "nope", "--grid", "g.png"], "no model 'nope'"),
        (["sample", "-n", "2", "--out", "out.txt.npy/x.npy"], "folder does not exist"),
        (["sample", "-n", "2", "--grid", "g.jpg"], "grid output must be a .png"),
        (["info", "--model", "nope"], "fashion-mnist-dense2"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_out_is_an_existing_file(tmp_path, capsys):
    existing = tmp_path / "file"
    existing.write_text("keep me")
    assert main(["sample", "-n", "2", "--out", str(existing)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert existing.read_text() == "keep me"


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    card = vae_gen.ModelCard.load(vae_gen.resolve_model(None))
    assert f"name:          {vae_gen.DEFAULT_MODEL}" in out
    assert f"latent_dim {card.latent_dim}" in out and "neg_elbo" in out and "MFLOP per image" in out


def test_info_json(capsys):
    import json

    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == vae_gen.DEFAULT_MODEL


def test_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{vae_gen.DEFAULT_MODEL} (default)" in out


def test_selftest(capsys):
    assert main(["selftest"]) == 0
    assert ": pass:" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["train", "--out", "r"], ["export", "r", "--out", "m"], ["parity", "m"]])
def test_train_commands_without_the_extra(command, capsys, monkeypatch):
    # Make one extra module look absent, as in the runtime-only install.
    monkeypatch.setattr("vae_gen.core.extras.TRAIN_EXTRA_MODULES", ("tensorflow_is_not_installed_here",))
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pip install 'vae-gen[train]'" in err


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vae_gen", "sample", "-n", "4", "--out", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "x.npy").shape == (4, 28, 28)


def test_out_with_an_image_suffix_is_refused(tmp_path, capsys):
    assert main(["sample", "-n", "2", "--out", str(tmp_path / "one.png")]) == 2
    assert "use --grid" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_grid_size_is_bounded(tmp_path, capsys):
    assert main(["sample", "-n", "10001", "--grid", str(tmp_path / "g.png")]) == 2
    assert "at most 10000 images" in capsys.readouterr().err


def test_grid_and_folder_together_hold_the_same_images(tmp_path):
    assert main(["sample", "-n", "300", "--seed", "4", "--out", str(tmp_path / "s"), "--grid", str(tmp_path / "g.png")]) == 0
    assert len(list((tmp_path / "s").glob("*.png"))) == 300
    images = vae_gen.load().generate(300, seed=4)
    from vae_gen.output.images import grid

    with Image.open(tmp_path / "g.png") as picture:
        assert np.array_equal(np.asarray(picture), np.asarray(grid(images)))


@pytest.mark.parametrize("command", [["models"], ["info", "--json"], ["info"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(command):
    # As `vae-gen models | head -1` does, except that the reader is gone before anything is written.
    process = subprocess.Popen([sys.executable, "-m", "vae_gen", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 141, stderr
    assert stderr == ""


def test_models_head_prints_one_line_and_no_traceback():
    result = subprocess.run(
        f"{sys.executable} -m vae_gen models | head -1", shell=True, capture_output=True, text=True, check=True
    )
    assert result.stdout.count("\n") == 1 and result.stderr == ""


def test_info_refuses_a_damaged_model_folder(shipped_model_copy, capsys):
    decoder = shipped_model_copy / "decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:-1] + b"\x00")
    for argv in (["info"], ["info", "--json"]):
        assert main([*argv, "--model", str(shipped_model_copy)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""  # nothing of the card, parity figures included, is shown
        assert "decoder.onnx: sha256" in captured.err and "does not match model.json" in captured.err


def test_models_reports_a_damaged_shipped_model(tmp_path, monkeypatch, capsys):
    import shutil

    from vae_gen.model import store as model_store

    for name in vae_gen.list_models():
        shutil.copytree(vae_gen.resolve_model(name), tmp_path / name)
    (tmp_path / DENSE2 / "encoder.onnx").write_bytes(b"not the graph")
    monkeypatch.setattr(model_store, "shipped_models_dir", lambda: tmp_path)
    assert main(["models"]) == 2
    captured = capsys.readouterr()
    assert DENSE2 not in captured.out and vae_gen.DEFAULT_MODEL in captured.out
    assert f"{DENSE2}/encoder.onnx: sha256" in captured.err


def test_a_training_run_folder_as_model_says_to_export_it(tmp_path, capsys):
    (tmp_path / "settings.json").write_text("{}")
    assert main(["sample", "-n", "1", "--model", str(tmp_path), "--grid", str(tmp_path / "g.png")]) == 2
    assert f"{tmp_path}: a training run, not a model folder; export it first: vae-gen export" in capsys.readouterr().err


def test_info_shows_sample_quality_and_question_marks_for_hand_edited_values(shipped_model_copy, capsys):
    import dataclasses

    card = vae_gen.ModelCard.load(shipped_model_copy)
    record = {"fd": 12.345, "precision": 0.81, "recall": "high", "class_entropy": float("nan"), "images": 10000}
    dataclasses.replace(card, extra={**card.extra, "sample_quality": record}).save(shipped_model_copy)
    assert main(["info", "--model", str(shipped_model_copy)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("samples:"))
    assert line.split(None, 1)[1] == (
        "FD 12.35, precision 0.810, recall ?, class entropy ? (10,000 images at T = 1 against the test set)"
    )
    dataclasses.replace(card, extra={**card.extra, "sample_quality": ["not", "a", "record"]}).save(shipped_model_copy)
    assert main(["info", "--model", str(shipped_model_copy)]) == 0
    assert "samples:       not measured" in capsys.readouterr().out


def test_info_escapes_control_characters_of_a_hostile_card(shipped_model_copy, capsys):
    import dataclasses

    card = vae_gen.ModelCard.load(shipped_model_copy)
    hostile = "\x1b[2J\x1b[31mcleared\nfake: line\r" + "x" * 1000
    training = {**card.training, "note\x1b]0;title\x07": "a\nb"}
    dataclasses.replace(card, description=hostile, training=training).save(shipped_model_copy)
    assert main(["info", "--model", str(shipped_model_copy)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert not any(line.startswith("fake:") for line in out.splitlines())
    description = next(line for line in out.splitlines() if line.startswith("description:"))
    assert "\\x1b[2J" in description and "\\n" in description and description.endswith("characters)")
    assert "note\\x1b]0;title\\x07=a\\nb" in out
