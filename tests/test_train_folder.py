"""Training on a folder of your own images: any size, grayscale or RGB, flat or one subfolder per class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae_gen
from vae_gen.cli.commands import main
from vae_gen.output.images import save_png

pytestmark = pytest.mark.tensorflow

COLOURS = {"blue": (30, 60, 230), "green": (40, 200, 60), "red": (220, 40, 30)}


def write_shapes(folder: Path, per_class: int = 24, size: tuple[int, int] = (16, 16)) -> None:
    """Coloured squares of random size and place on black, one subfolder per colour."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.zeros((*size, 3), np.uint8)
            top, left = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
            side = rng.integers(4, size[0] // 2)
            image[top : top + side, left : left + side] = colour
            save_png(image, folder / name / f"{i:03d}.png")


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes") / "data"
    write_shapes(folder)
    (folder / "red" / ".DS_Store").write_bytes(b"\0\1")  # hidden and non-image files are ignored
    (folder / "notes.txt").write_text("not an image")
    run = folder.parent / "run"
    argv = ["train", "--data", str(folder), "--arch", "conv", "--latent-dim", "4", "--epochs", "1", "--batch-size", "16",
            "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    return folder, run


def test_a_folder_of_rgb_images_in_class_subfolders_trains_exports_and_samples(shapes_run, tmp_path, capsys):
    folder, run = shapes_run
    settings = json.loads((run / "settings.json").read_text())
    assert settings["data"] == str(folder) and settings["test_fraction"] is None
    dataset = json.loads((run / "metrics.json").read_text())["dataset"]
    assert dataset["class_names"] == ["blue", "green", "red"] and dataset["image_shape"] == [16, 16, 3]
    assert dataset["train_images"] + dataset["test_images"] == 72 and dataset["test_images"] == 8  # 0.1, rounded up
    assert (run / "report-latent.png").is_file()
    model = tmp_path / "shapes"
    assert main(["export", str(run), "--out", str(model)]) == 0
    card = vae_gen.load(model).card
    assert card.image_shape == (16, 16, 3) and card.training["data"] == str(folder)
    assert card.test_metrics["test_images"] == 8 and "held out at random (seed 0)" in card.test_metrics["data"]
    assert main(["sample", "--model", str(model), "-n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 16, 16, 3)
    assert main(["evaluate", str(model), "--data", str(folder), "--iw-samples", "2", "--report", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["test_images"] == 72
    # Without --data: the test split the card was scored on, from the folder the card records.
    capsys.readouterr()
    assert main(["evaluate", str(model), "--iw-samples", "2", "--report", str(tmp_path / "own.json")]) == 0
    assert f"scoring on the data the model was trained on ({folder}: " in capsys.readouterr().out
    own = json.loads((tmp_path / "own.json").read_text())
    assert own["test_images"] == 8 and own["neg_elbo"] == pytest.approx(card.test_metrics["neg_elbo"], abs=1e-3)


def test_the_same_seed_holds_out_the_same_images(shapes_run, tmp_path):
    from vae_gen.train.datasets import load_dataset
    from vae_gen.training.settings import TrainSettings

    folder, _ = shapes_run
    first = load_dataset(TrainSettings(data=str(folder)))
    again = load_dataset(TrainSettings(data=str(folder)))
    other = load_dataset(TrainSettings(data=str(folder), seed=1))
    assert np.array_equal(first.test_images, again.test_images) and not np.array_equal(first.test_images, other.test_images)
    assert first.train_images.dtype == np.uint8  # never a float32 copy of the set
    half = load_dataset(TrainSettings(data=str(folder), test_fraction=0.5))
    assert len(half.test_images) == 36


def test_the_folder_reader_gives_exactly_the_idx_readers_pixels_and_labels(tmp_path):
    from vae_gen.train.data import CLASS_NAMES, load_fashion_mnist
    from vae_gen.train.image_folder import list_images, read_split, survey

    data = load_fashion_mnist()
    folders = [f"{label}-{name.replace('/', '-')}" for label, name in enumerate(CLASS_NAMES)]  # sorted as the labels
    for index, (image, label) in enumerate(zip(data.test_images, data.test_labels, strict=True)):
        target = tmp_path / folders[label] / f"{index:05d}.png"
        target.parent.mkdir(exist_ok=True)
        save_png(image, target)
    candidates, class_names = list_images(tmp_path)
    assert class_names == tuple(folders)
    good, size, channels, bad = survey(candidates, None, None, skip_bad=False)
    assert (size, channels, bad) == ((28, 28), 1, [])
    split, _ = read_split(good, (28, 28, 1), skip_bad=False)
    order = [int(c.path.stem) for c in good]
    assert np.array_equal(split.images[..., 0], data.test_images[order])
    assert np.array_equal(split.labels, data.test_labels[order])


def test_a_corrupt_image_is_named_or_skipped_and_counted(tmp_path, capsys, caplog):
    folder = tmp_path / "data"
    write_shapes(folder, per_class=4)
    broken = folder / "green" / "001.png"
    broken.write_bytes(broken.read_bytes()[:45])  # a valid header, truncated pixels: fails only when decoded
    argv = ["train", "--data", str(folder), "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{broken}: not a readable image" in err and "--skip-bad" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
    assert main([*argv, "--skip-bad"]) == 0
    assert "skipped 1 unreadable files (--skip-bad)" in caplog.text
    dataset = json.loads((tmp_path / "run" / "metrics.json").read_text())["dataset"]
    assert dataset["train_images"] + dataset["test_images"] == 11


def test_mixed_sizes_need_an_image_size(tmp_path, capsys):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, size in enumerate([(20, 12), (20, 12), (24, 24)]):
        Image.new("L", (size[1], size[0]), color=40 * i).save(folder / f"{i}.png")
    argv = ["train", "--data", str(folder), "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "the images have 2 different sizes (20x12: 2, 24x24: 1); pass --image-size HxW" in capsys.readouterr().err
    assert main([*argv, "--image-size", "20x12", "--arch", "residual", "--latent-dim", "3"]) == 0
    dataset = json.loads((tmp_path / "run" / "metrics.json").read_text())["dataset"]
    assert dataset["image_shape"] == [20, 12, 1] and dataset["class_names"] == []


def test_a_folder_with_train_and_test_subfolders_keeps_its_split(tmp_path):
    from vae_gen.train.datasets import load_dataset
    from vae_gen.training.settings import TrainSettings

    write_shapes(tmp_path / "data" / "train", per_class=5)
    write_shapes(tmp_path / "data" / "test", per_class=2)
    dataset = load_dataset(TrainSettings(data=str(tmp_path / "data"), channels=1))
    assert (len(dataset.train_images), len(dataset.test_images)) == (15, 6)
    assert dataset.image_shape == (16, 16, 1) and dataset.test_split == str(tmp_path / "data" / "test")


@pytest.mark.parametrize("shape", [(32, 32, 3), (48, 64, 1), (20, 12, 1), (30, 30, 3)])
@pytest.mark.parametrize("arch", ["dense", "conv", "residual"])
def test_every_architecture_builds_for_any_image_shape(arch, shape):
    from vae_gen.train.model import build_networks

    encoder, decoder = build_networks(arch, 4, shape)
    assert tuple(decoder.output_shape[1:]) == shape and tuple(encoder.input_shape[1:]) == shape
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 4), (None, 4)]


def test_a_cropping_decoder_exports_without_random_ops(tmp_path):
    import onnx

    from vae_gen.export.convert import RANDOM_OPS, graph_op_types
    from vae_gen.export.exporter import export_keras
    from vae_gen.train.model import build_networks

    encoder, decoder = build_networks("residual", 3, (30, 30, 3))  # 8x8 -> 32x32, cropped to 30x30
    card = export_keras(decoder, tmp_path / "m", encoder=encoder)
    assert card.image_shape == (30, 30, 3) and card.parity["max_abs_diff"] <= 1e-5
    for graph in ("decoder.onnx", "encoder.onnx"):
        assert not graph_op_types(onnx.load(str(tmp_path / "m" / graph))) & RANDOM_OPS


def test_limits_take_a_sample_of_every_class_and_fractions_round_as_written(tmp_path):
    from vae_gen.train.datasets import load_dataset
    from vae_gen.train.image_folder import Candidate, split_candidates
    from vae_gen.training.settings import TrainSettings

    write_shapes(tmp_path / "data", per_class=10)
    limited = load_dataset(TrainSettings(data=str(tmp_path / "data"), train_limit=9, test_fraction=0.2))
    assert len(set(limited.train_labels.tolist())) == 3  # not the first class's nine files
    candidates = [Candidate(Path(f"{i}.png"), 0) for i in range(100)]
    assert len(split_candidates(candidates, 0.07, seed=0)[1]) == 7  # 100 x 0.07 is 7.000000000000001


def test_a_run_records_its_folder_absolute_and_export_refuses_a_changed_folder(tmp_path, monkeypatch, capsys):
    write_shapes(tmp_path / "data", per_class=6)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "data", "--epochs", "1", "--out", "run"]) == 0
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["data"] == str(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "data")  # export works from anywhere
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m1")]) == 0
    from vae_gen.train.image_folder import list_images, split_candidates

    _, test = split_candidates(list_images(tmp_path / "data")[0], 0.1, seed=0)
    test[0].path.unlink()  # one of the run's test images is gone
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m2")]) == 2
    assert "its files changed since" in capsys.readouterr().err and not (tmp_path / "m2").exists()


def test_a_small_folder_gets_warnings_about_steps_and_thin_classes(tmp_path, caplog):
    import logging

    from vae_gen.train.fit import TrainSettings, train

    folder = tmp_path / "data"
    write_shapes(folder, per_class=6)
    for extra in (folder / "green").iterdir():  # green: one image only, so it has no test image
        if extra.name != "000.png":
            extra.unlink()
    caplog.set_level(logging.INFO, logger="vae_gen")
    settings = TrainSettings(data=str(folder), arch="dense", latent_dim=2, epochs=2, batch_size=4)
    train(settings, tmp_path / "run")
    text = caplog.text
    assert "3 optimizer steps per epoch (batch 4), 6 in all" in text  # 11 training images, 2 held out
    assert "only 6 optimizer steps in all (2 epochs of 3)" in text and "use --epochs 667" in text
    assert "class green has only 1 training image(s)" in text and "class green has no test images" in text
    assert "class blue has no test images" not in text
