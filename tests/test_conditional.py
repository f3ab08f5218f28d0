"""Class-conditional models in the runtime, the CLI and bulk runs (tests/fixtures/tiny-conditional, no TensorFlow),
and trained and exported by vae-gen (marked tensorflow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_gen import Generator, InvalidArgumentError
from vae_gen.bulk import generate_run, merge_manifests
from vae_gen.cli.commands import main
from vae_gen.model.card import ModelCard
from vae_gen.sampling.labels import parse_label_text

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-conditional"
CLASSES = ("circle", "square", "T-shirt/top")


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator(FIXTURE)


def test_the_card_names_the_classes_and_the_label_input(gen):
    assert gen.classes == CLASSES
    assert gen.card.format_version == 3
    assert gen.card.decoder.inputs == ("z", "label") and gen.card.encoder.inputs == ("image", "label")
    assert gen.selftest().passed
    assert len(gen.card.golden.labels) == len(gen.card.golden.latents)
    assert ModelCard.from_dict(gen.card.to_dict()) == gen.card


def test_unconditional_models_have_no_classes_and_refuse_a_label():
    plain = Generator()
    assert plain.classes == ()
    with pytest.raises(InvalidArgumentError, match=r"is not class-conditional, so it takes no label; got 'Shirt'"):
        plain.generate(2, label="Shirt")


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (None, r"is class-conditional: give label= one of circle, square, T-shirt/top, an index 0-2, 'all'"),
        ("triangle", r"unknown class 'triangle' for model 'tiny-conditional'; classes: circle, square, T-shirt/top"),
        (3, r"class index 3 is out of range for model 'tiny-conditional': 0-2 \(circle, square, T-shirt/top\)"),
        (-1, r"class index -1 is out of range"),
        (True, r"unknown class True"),
        (1.5, r"unknown class 1.5"),
        (object, r"unknown class <class 'object'>"),
        ({"circle": 0.5, "square": 0.6}, r"blend weights must sum to 1, got 1.1 \(circle:0.5,square:0.6\)"),
        ({"circle": -0.5, "square": 1.5}, r"blend weight of 'circle' must be a finite number >= 0, got -0.5"),
        ({"circle": float("nan"), "square": 1.0}, r"blend weight of 'circle' must be a finite number >= 0"),
        ({"triangle": 1.0}, r"unknown class 'triangle'"),
        ({}, r"a blend needs at least one class"),
        (["circle"], r"label holds 1 per-image labels for 2 images; give one per image"),
        (["circle", "all"], r"'all' cannot be one image's label"),
        (np.ones((2, 3), np.float32), r"label row 0 must be finite weights >= 0 summing to 1"),
        (np.ones((2, 2), np.float32) / 2, r"label rows must be floats of shape \[2, 3\]"),
    ],
)
def test_bad_labels_are_refused_naming_the_value_and_the_classes(gen, label, message):
    with pytest.raises(InvalidArgumentError, match=message):
        gen.generate(2, seed=0, label=label)


def test_a_class_by_name_or_index_gives_the_same_images_and_the_label_matters(gen):
    by_name, by_index = gen.generate(8, seed=3, label="square"), gen.generate(8, seed=3, label=1)
    assert np.array_equal(by_name, by_index)
    assert np.array_equal(by_name, gen.generate(8, seed=3, label=np.int64(1)))
    assert not np.array_equal(by_name, gen.generate(8, seed=3, label="circle"))


def test_a_blend_decodes_the_weighted_label_row(gen):
    z = gen.latents(4, seed=1)
    blend = gen.decode(z, label={"circle": 0.25, "T-shirt/top": 0.75})
    rows = np.tile(np.array([[0.25, 0.0, 0.75]], np.float32), (4, 1))
    assert np.array_equal(blend, gen.decode(z, label=rows))
    assert np.array_equal(blend, gen.decode(z, label=[{"circle": 0.25, "T-shirt/top": 0.75}] * 4))
    assert not np.array_equal(blend, gen.decode(z, label="circle"))


def test_all_cycles_the_classes_by_image_index_whatever_the_batching(gen):
    every = gen.generate(30, seed=5, label="all", batch_size=7)
    per_image = gen.generate(30, seed=5, label=[i % 3 for i in range(30)], batch_size=32)
    assert np.array_equal(every, per_image)
    tail = gen.generate(13, seed=5, label="all", start=17, batch_size=4)
    assert np.array_equal(every[17:], tail)
    for k in range(3):
        assert np.array_equal(every[k::3], gen.generate(30, seed=5, label=k)[k::3])


def test_encode_takes_the_label_too(gen):
    images = gen.decode(gen.latents(3, seed=2), label="circle")
    mean_circle, _ = gen.encode(images, label="circle")
    mean_square, _ = gen.encode(images, label=[1, 1, 1])
    assert mean_circle.shape == (3, 3) and not np.array_equal(mean_circle, mean_square)
    with pytest.raises(InvalidArgumentError, match=r"is class-conditional: give label="):
        gen.encode(images)


def test_label_text_reads_names_indices_all_and_blends():
    assert parse_label_text("T-shirt/top", CLASSES) == "T-shirt/top"
    assert parse_label_text("2", CLASSES) == 2
    assert parse_label_text("all", CLASSES) == "all"
    assert parse_label_text("circle:0.5,square:0.5", CLASSES) == {"circle": 0.5, "square": 0.5}
    assert parse_label_text("7", ("a", "7")) == "7"  # a class name wins
    with pytest.raises(InvalidArgumentError, match=r"a blend is NAME:WEIGHT,NAME:WEIGHT"):
        parse_label_text("circle:0.5,square", CLASSES)


def _read_tree(folder: Path) -> dict[int, tuple[str, np.ndarray]]:
    """{index: (class folder, pixels)} of a by-class PNG tree."""
    out = {}
    for path in folder.glob("*/*.png"):
        out[int(path.stem)] = (path.parent.name, np.asarray(Image.open(path)))
    return out


def test_shards_and_resume_of_a_class_run_equal_one_full_run(gen, tmp_path):
    full = tmp_path / "full"
    generate_run(gen, full, 50, seed=9, label="all", batch_size=8)
    sharded = tmp_path / "sharded"
    ranges = [generate_run(gen, sharded, 50, seed=9, label="all", batch_size=8, shard=(k, 3)) for k in range(3)]
    merge_manifests(sharded, 50, [(r.lo, r.hi) for r in ranges])
    for name in sorted(p.name for p in full.iterdir()):
        assert (full / name).read_bytes() == (sharded / name).read_bytes(), name
    lines = [json.loads(line) for line in (full / "manifest.jsonl").read_text().splitlines()]
    assert [line["class"] for line in lines] == [CLASSES[i % 3] for i in range(50)]
    (full / "000013.png").unlink()
    assert generate_run(gen, full, 50, seed=9, label="all", batch_size=8, mode="resume").written == 1
    assert (full / "000013.png").read_bytes() == (sharded / "000013.png").read_bytes()
    with pytest.raises(Exception, match=r"holds a run with a different label"):
        generate_run(gen, full, 50, seed=9, label="circle", batch_size=8, mode="resume")


def test_by_class_layout_puts_each_image_in_its_class_folder(gen, tmp_path):
    out = tmp_path / "tree"
    generate_run(gen, out, 12, seed=1, label="all", layout="by-class")
    tree = _read_tree(out)
    assert sorted(tree) == list(range(12))
    expected = gen.generate(12, seed=1, label="all")
    for index, (folder, pixels) in tree.items():
        assert folder == ("circle", "square", "T-shirt_top")[index % 3]
        assert np.array_equal(pixels, expected[index])
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert lines[2] == {"index": 2, "file": "T-shirt_top/000002.png", "seed": 1, "class": "T-shirt/top"}
    with pytest.raises(InvalidArgumentError, match=r"a blend has none"):
        generate_run(gen, tmp_path / "blend", 3, label={"circle": 0.5, "square": 0.5}, layout="by-class")
    with pytest.raises(InvalidArgumentError, match=r"needs a class-conditional model"):
        generate_run(Generator(), tmp_path / "plain", 3, layout="by-class")


def test_npz_holds_images_labels_and_classes_that_match_the_pngs(gen, tmp_path):
    generate_run(gen, tmp_path / "run.npz", 10, seed=4, label="all")
    with np.load(tmp_path / "run.npz") as data:
        assert data["labels"].tolist() == [i % 3 for i in range(10)] and data["labels"].dtype == np.int64
        assert tuple(data["classes"]) == CLASSES
        assert np.array_equal(data["images"], gen.generate(10, seed=4, label="all"))
    generate_run(gen, tmp_path / "blend.npz", 4, seed=4, label={"circle": 0.5, "square": 0.5})
    with np.load(tmp_path / "blend.npz") as data:
        assert data["labels"].shape == (4, 3) and np.allclose(data["labels"], [[0.5, 0.5, 0.0]] * 4)


def test_cli_sample_class_options(tmp_path, capsys):
    model = str(FIXTURE)
    assert main(["sample", "--model", model, "-n", "6", "--class", "square", "--out", str(tmp_path / "a.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), Generator(FIXTURE).generate(6, label="square"))
    blend = ["--class", "circle:0.5,square:0.5"]
    assert main(["sample", "--model", model, "-n", "6", *blend, "--out", str(tmp_path / "b.npy")]) == 0
    assert main(["sample", "--model", model, "-n", "4", "--out", str(tmp_path / "c.npy")]) == 2
    assert "give --class one of circle, square, T-shirt/top" in capsys.readouterr().err
    assert main(["sample", "-n", "4", "--class", "Shirt", "--out", str(tmp_path / "d.npy")]) == 2
    assert "is not class-conditional, so it takes no label; got 'Shirt'" in capsys.readouterr().err
    assert not (tmp_path / "c.npy").exists() and not (tmp_path / "d.npy").exists()


def test_cli_grid_with_all_has_one_row_per_class(tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", "--model", str(FIXTURE), "-n", "7", "--class", "all", "--grid", str(grid)]) == 0
    sheet = np.asarray(Image.open(grid))
    images = Generator(FIXTURE).generate(7, label="all")
    # 3 rows (classes) of ceil(7 / 3) = 3 columns, 8x8 cells with 2 pixels of padding.
    assert sheet.shape == (3 * 10 + 2, 3 * 10 + 2)
    for i, image in enumerate(images):
        row, column = i % 3, i // 3
        assert np.array_equal(sheet[2 + row * 10 : 10 + row * 10, 2 + column * 10 : 10 + column * 10], image)


def test_cli_info_and_models_show_classes(capsys):
    assert main(["info", "--model", str(FIXTURE)]) == 0
    assert "classes:       3, for --class: 0 circle, 1 square, 2 T-shirt/top" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "unconditional" in capsys.readouterr().out


def test_cli_interpolate_morphs_the_class_with_z_fixed(tmp_path):
    strip = tmp_path / "morph.png"
    assert main(["interpolate", "--model", str(FIXTURE), "--from-class", "circle", "--to-class", "square",
                 "--steps", "3", "--from-seed", "2", "--out", str(strip)]) == 0  # fmt: skip
    sheet = np.asarray(Image.open(strip))
    gen = Generator(FIXTURE)
    z = np.repeat(gen.latents(1, seed=2), 3, axis=0)
    rows = np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0]], np.float64)
    expected = gen.decode_uint8(z, label=rows)
    for i in range(3):
        assert np.array_equal(sheet[2:10, 2 + i * 10 : 10 + i * 10], expected[i])


@pytest.mark.parametrize("command", [["walk", "--legs", "2", "--frames-per-leg", "2"], ["manifold", "--size", "2"]])
def test_cli_walk_and_manifold_take_a_class(command, tmp_path, capsys):
    out = str(tmp_path / ("w.gif" if command[0] == "walk" else "m.png"))
    assert main([*command, "--model", str(FIXTURE), "--out", out]) == 2
    assert "give --class" in capsys.readouterr().err
    assert main([*command, "--model", str(FIXTURE), "--class", "square", "--out", out]) == 0


@pytest.mark.tensorflow
def test_a_by_class_tree_reads_back_as_a_labelled_dataset(gen, tmp_path):
    import keras

    from vae_gen.train.datasets import read_image_folder
    from vae_gen.training.settings import TrainSettings

    out = tmp_path / "tree"
    generate_run(gen, out, 30, seed=2, label="all", layout="by-class")
    expected = gen.generate(30, seed=2, label="all")
    folders = ("circle", "square", "T-shirt_top")
    dataset = keras.utils.image_dataset_from_directory(out, labels="inferred", color_mode="grayscale", image_size=(8, 8),
                                                       shuffle=False, batch_size=64)  # fmt: skip
    assert dataset.class_names == sorted(folders)
    images, labels = next(iter(dataset))
    by_class = {name: [i for i in range(30) if folders[i % 3] == name] for name in folders}
    for name, indices in by_class.items():
        picked = np.asarray(images)[np.asarray(labels) == dataset.class_names.index(name)][..., 0]
        assert np.array_equal(picked.astype(np.uint8), expected[indices])  # files sort by index within a class
    data = read_image_folder(TrainSettings(data=str(out), test_fraction=0.2))
    assert set(data.class_names) == set(folders)
    assert len(data.train_images) + len(data.test_images) == 30


@pytest.mark.tensorflow
def test_conditional_training_needs_labelled_data(tmp_path):
    from vae_gen.train.fit import train
    from vae_gen.training.settings import TrainSettings

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(flat / f"{i}.png")
    with pytest.raises(Exception, match=r"--conditional needs labelled images of two classes or more; .* has no classes"):
        train(TrainSettings(data=str(flat), conditional=True, epochs=1, test_fraction=0.5), tmp_path / "run")
    unconditional = TrainSettings(data=str(flat), objective="adversarial", class_weight=1.0, epochs=1, test_fraction=0.5)
    with pytest.raises(Exception, match=r"--class-weight 1 needs labelled images of two classes or more; .* has no classes"):
        train(unconditional, tmp_path / "run")


@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory) -> Path:
    """A conditional conv VAE trained one epoch on 2,000 Fashion-MNIST images, exported behind the parity gate."""
    from vae_gen.export.exporter import export_run
    from vae_gen.train.fit import train
    from vae_gen.training.settings import TrainSettings

    folder = tmp_path_factory.mktemp("conditional")
    settings = TrainSettings(conditional=True, arch="conv", latent_dim=4, epochs=1, train_limit=2000, test_limit=500,
                             batch_size=128)  # fmt: skip
    train(settings, folder / "run")
    export_run(folder / "run", folder / "model")
    return folder


@pytest.mark.tensorflow
def test_a_trained_conditional_vae_exports_behind_parity_with_its_labels(conditional_model):
    import keras

    from vae_gen.export.parity import check_model_folder
    from vae_gen.train.data import CLASS_NAMES

    gen = Generator(conditional_model / "model")
    assert gen.classes == CLASS_NAMES
    parity = gen.card.parity
    decoder_checks = [c for c in parity["checks"] if c["graph"] == "decoder"]
    assert {c["batch"] for c in decoder_checks} == {1, 7, 256, 66}
    assert all("one-hot and blended labels" in c["inputs"] for c in decoder_checks)
    assert parity["max_abs_diff"] <= parity["tolerance"]
    decoder = keras.saving.load_model(conditional_model / "run" / "decoder.keras")
    z = gen.latents(20, seed=3)
    rows = np.random.default_rng(0).dirichlet(np.ones(10), 20).astype(np.float32)
    assert np.max(np.abs(gen.decode(z, label=rows) - np.asarray(decoder([z, rows])))) < 1e-5
    # Scored given the labels, as in training: the same -ELBO from the ONNX graphs as from Keras.
    trained = json.loads((conditional_model / "run" / "metrics.json").read_text())["test_metrics"]
    assert gen.card.test_metrics["neg_elbo"] == pytest.approx(trained["neg_elbo"], abs=0.01)
    assert check_model_folder(conditional_model / "model").max_abs_diff <= parity["tolerance"]


@pytest.mark.tensorflow
def test_a_users_conditional_keras_vae_exports_with_its_class_names(tmp_path, capsys):
    import importlib.util

    import keras

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURE.parent / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    make_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixtures)
    keras.utils.set_random_seed(1)
    decoder, encoder = make_fixtures.conditional_models()  # a user's own conditional VAE
    decoder.save(tmp_path / "decoder.keras")
    encoder.save(tmp_path / "encoder.keras")
    files = ["--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras")]
    assert main(["export", *files, "--out", str(tmp_path / "none")]) == 2
    assert "the decoder's label has 3 classes, but 0 class names were given; name them" in capsys.readouterr().err
    assert main(["export", *files, "--classes", "a,b", "--out", str(tmp_path / "two")]) == 2
    assert "but 2 class names were given" in capsys.readouterr().err
    (tmp_path / "classes.txt").write_text("cat\ndog\n\nbird\n")
    assert main(["export", *files, "--classes", str(tmp_path / "classes.txt"), "--out", str(tmp_path / "m")]) == 0
    gen = Generator(tmp_path / "m")
    assert gen.classes == ("cat", "dog", "bird") and gen.selftest().passed
    z = gen.latents(5, seed=0)
    one_hot = np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]
    assert np.max(np.abs(gen.decode(z, label=[0, 1, 2, 1, 0]) - np.asarray(decoder([z, one_hot])))) < 1e-5
    images = gen.decode(z, label="bird")
    keras_mean = np.asarray(encoder([images, np.eye(3, dtype=np.float32)[[2] * 5]])[0])
    assert np.max(np.abs(gen.encode(images, label="bird")[0] - keras_mean)) < 1e-5
    assert not (tmp_path / "none").exists() and not (tmp_path / "two").exists()


@pytest.mark.tensorflow
def test_a_conditional_vae_trains_on_class_folders_and_asks_for_them_by_name(tmp_path):
    from vae_gen.export.exporter import export_run
    from vae_gen.train.fit import train
    from vae_gen.training.settings import TrainSettings

    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 220)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(np.clip(rng.normal(level, 10, (8, 8)), 0, 255).astype(np.uint8)).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    settings = TrainSettings(data=str(tmp_path / "data"), conditional=True, arch="dense", latent_dim=2, epochs=1,
                             batch_size=8, test_fraction=0.2)  # fmt: skip
    train(settings, tmp_path / "run")
    export_run(tmp_path / "run", tmp_path / "model")
    gen = Generator(tmp_path / "model")
    assert gen.classes == ("dark", "light")
    assert gen.card.test_metrics["test_images"] == 8
    assert gen.generate(4, label="light").shape == (4, 8, 8)


def test_label_text_edge_cases_are_one_line_errors_or_indices(gen, tmp_path, capsys):
    assert parse_label_text("0:0.5,2:0.5", CLASSES) == {0: 0.5, 2: 0.5}  # indices in a blend, as alone
    assert np.array_equal(gen.generate(3, label=parse_label_text("0:0.5,2:0.5", CLASSES)),
                          gen.generate(3, label={"circle": 0.5, "T-shirt/top": 0.5}))  # fmt: skip
    for text in ("²", "٢"):  # digits to str.isdigit, not indices
        assert main(["sample", "--model", str(FIXTURE), "-n", "1", "--class", text, "--out", str(tmp_path / "x.npy")]) == 2
        assert f"unknown class {text!r}" in capsys.readouterr().err
    assert np.array_equal(gen.generate(2, label=np.array(1)), gen.generate(2, label=1))  # a 0-d array is one value
    assert main(["interpolate", "--model", str(FIXTURE), "--from-class", "all", "--to-class", "square",
                 "--out", str(tmp_path / "m.png")]) == 2  # fmt: skip
    assert "each name one class (or a blend), not all" in capsys.readouterr().err


def test_a_blends_manifest_text_names_the_row_it_was_decoded_with(gen, tmp_path):
    weights = {"circle": 1 / 7, "square": 6 / 7}
    generate_run(gen, tmp_path / "run", 3, label=weights)
    text = json.loads((tmp_path / "run" / "manifest.jsonl").read_text().splitlines()[0])["class"]
    assert np.array_equal(gen.labels(parse_label_text(text, CLASSES)).rows(0, 1), gen.labels(weights).rows(0, 1))
    third = {name: 1 / 3 for name in CLASSES}
    generate_run(gen, tmp_path / "even", 2, label=third)
    text = json.loads((tmp_path / "even" / "manifest.jsonl").read_text().splitlines()[0])["class"]
    assert np.array_equal(gen.labels(parse_label_text(text, CLASSES)).rows(0, 1), gen.labels(third).rows(0, 1))
