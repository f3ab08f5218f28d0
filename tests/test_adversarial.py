"""The adversarial objective (`--objective adversarial`) and fine-tuning (`--init-from`): tiny runs on small
slices, exported through the parity gate like any other run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vae_gen
from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow

SLICE = ["--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--batch-size", "64"]


@pytest.fixture(scope="module")
def adversarial_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("adversarial") / "run"
    argv = ["train", "--objective", "adversarial", "--arch", "conv", "--latent-dim", "4", "--conditional", *SLICE]
    argv += ["--discriminator-depth", "3", "--class-weight", "1", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_adversarial_run_records_its_objective_and_keeps_the_discriminator_in_the_run(adversarial_run):
    settings = json.loads((adversarial_run / "settings.json").read_text())
    assert settings["objective"] == "adversarial" and settings["adversarial_weight"] == 0.1
    assert (adversarial_run / "discriminator.keras").is_file()
    (epoch,) = json.loads((adversarial_run / "history.json").read_text())
    for key in ("discriminator", "adversarial", "adaptive_scale", "class_loss", "neg_elbo", "val_neg_elbo"):
        assert np.isfinite(epoch[key]) and epoch[key] > 0, (key, epoch)
    assert settings["discriminator_depth"] == 3 and settings["class_weight"] == 1.0


def test_the_discriminator_has_the_depth_and_the_class_head_the_settings_ask_for(adversarial_run):
    import keras

    discriminator = keras.saving.load_model(adversarial_run / "discriminator.keras", compile=False)
    convolutions = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convolutions] == [64, 128, 256]
    realness, class_logits = discriminator([np.zeros((2, 28, 28, 1), np.float32), np.eye(10, dtype=np.float32)[:2]])
    assert realness.shape == (2, 1) and class_logits.shape == (2, 10)


def test_adversarial_run_exports_through_the_parity_gate_without_the_discriminator(adversarial_run, tmp_path):
    model = tmp_path / "model"
    assert main(["export", str(adversarial_run), "--out", str(model)]) == 0
    assert not list(model.glob("discriminator*"))
    generator = vae_gen.load(model)
    assert generator.card.training["objective"] == "adversarial"
    assert generator.selftest().passed
    images = generator.generate(8, seed=0, label=generator.card.classes[1])
    assert images.shape == (8, 28, 28) and images.dtype == np.uint8


def test_fine_tuning_starts_from_the_given_weights(tiny_run, tmp_path):
    from vae_gen.export.parity import load_keras
    from vae_gen.train.fit import TrainSettings, train

    settings = json.loads((tiny_run / "settings.json").read_text())
    # A learning rate too small to move a weight: the run's result is its starting point.
    tuned = TrainSettings(**settings).replace(init_from=str(tiny_run), learning_rate=1e-12, epochs=1)
    train(tuned, tmp_path / "tuned")
    for name in ("encoder", "decoder"):
        before = load_keras(tiny_run / f"{name}.keras").get_weights()
        after = load_keras(tmp_path / "tuned" / f"{name}.keras").get_weights()
        assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after, strict=True))
    assert json.loads((tmp_path / "tuned" / "settings.json").read_text())["init_from"] == str(tiny_run)


def test_fine_tuning_from_another_architecture_is_one_line(tiny_run, tmp_path, capsys):
    argv = ["train", "--arch", "conv", "--init-from", str(tiny_run), *SLICE, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "encoder.keras has weights of other shapes" in err, err
    assert not (tmp_path / "run").exists()


def test_fine_tuning_from_a_folder_without_keras_files_is_one_line(tmp_path, capsys):
    argv = ["train", "--init-from", str(tmp_path), *SLICE, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no encoder.keras or decoder.keras" in err, err


def test_a_judge_scores_every_epoch_into_the_history(tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    def judge(decoder):
        z = np.zeros((4, int(decoder.inputs[0].shape[-1])), np.float32)
        return {"mean": float(decoder.predict(z, verbose=0).mean())}

    settings = TrainSettings(objective="adversarial", epochs=2, train_limit=256, test_limit=128, batch_size=64)
    train(settings, tmp_path / "run", judge=judge)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [0 < epoch["samples_mean"] < 1 for epoch in history] == [True, True]


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--data", "/does/not/exist"], "--data '/does/not/exist' is neither fashion-mnist nor an existing folder"),
        (["--init-from", "no-such-model"], "--init-from no model 'no-such-model'"),
        (["--out", "EXISTING"], "already exists and is not an empty folder"),
    ],
)
def test_training_is_refused_before_tensorflow_loads(tmp_path, options, expected):
    import subprocess
    import sys

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "a run").write_text("keep")
    options = [str(existing) if option == "EXISTING" else option for option in options]
    argv = ["train", *SLICE, *(["--out", str(tmp_path / "new")] if "--out" not in options else []), *options]
    script = (
        "import sys\nfrom vae_gen.cli.commands import main\nstatus = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\nsys.exit(status)"
    )
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr
    assert (existing / "a run").read_text() == "keep" and not (tmp_path / "new").exists()


def test_the_starting_folder_is_recorded_as_given(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from vae_gen.train.fit import TrainSettings, train

    # The checkout's folder: the installed package holds only the ONNX graphs.
    shutil.copytree(Path(__file__).parents[1] / "models" / "fashion-mnist-dense2", tmp_path / "models" / "dense2")
    monkeypatch.chdir(tmp_path)
    settings = TrainSettings(init_from="models/dense2", latent_dim=2, epochs=1, train_limit=64, test_limit=64)
    train(settings, tmp_path / "run")  # the dense2 model's shapes: dense, latent 2
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["init_from"] == "models/dense2"


def test_the_r1_weight_is_a_setting_the_discriminator_loss_uses():
    from vae_gen.train.fit import build_model
    from vae_gen.training.settings import TrainSettings

    settings = TrainSettings(objective="adversarial", r1_gamma=10.0, latent_dim=2)
    assert build_model(settings, (28, 28, 1), classes=0).r1_gamma == 10.0
    assert TrainSettings().r1_gamma == 1.0  # the shipped sharp models' value


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"class_weight": 1.0}, "needs --objective adversarial"),
        ({"conditional": True, "class_weight": 1.0}, "needs --objective adversarial"),
        ({"discriminator_depth": 5}, "discriminator_depth"),
        ({"class_weight": -1.0}, "class_weight"),
    ],
)
def test_discriminator_settings_out_of_their_rules_are_refused(changes, message):
    from vae_gen.training.rules import SettingError
    from vae_gen.training.settings import TrainSettings

    with pytest.raises(SettingError, match=message):
        TrainSettings(**changes)


@pytest.mark.parametrize("conditional", [True, False], ids=["label", "confidence"])
def test_the_class_term_changes_what_the_decoder_learns(conditional):
    import keras

    from vae_gen.train.fit import build_model
    from vae_gen.training.settings import TrainSettings

    rng = np.random.default_rng(0)
    images = rng.random((16, 28, 28, 1)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    decoders = []
    for class_weight in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        settings = TrainSettings(objective="adversarial", conditional=conditional, arch="conv", latent_dim=2,
                                 class_weight=class_weight)  # fmt: skip
        model = build_model(settings, (28, 28, 1), classes=10 if conditional else 0, class_head=10)
        model.compile(keras.optimizers.Adam(1e-3))
        batch = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)
        model.train_step(batch if conditional or class_weight else batch[0])  # as fit's batches are made
        decoders.append(model.decoder.get_weights())
    # Same start, same noise; only the class head's pull on the decoded images differs (towards their label when
    # conditional; towards one clear class each, all classes evenly, when not).
    assert any(not np.allclose(a, b) for a, b in zip(*decoders, strict=True))


def test_with_samples_only_the_discriminator_never_reaches_the_encoder():
    import keras

    from vae_gen.train.fit import build_model
    from vae_gen.training.settings import TrainSettings

    images = np.random.default_rng(0).random((16, 28, 28, 1)).astype(np.float32)
    encoders, decoders = {}, {}
    for objective, judged in (("elbo", "both"), ("adversarial", "both"), ("adversarial", "samples")):
        keras.utils.set_random_seed(0)
        settings = TrainSettings(objective=objective, adversarial_images=judged, arch="conv", latent_dim=2)
        model = build_model(settings, (28, 28, 1), classes=0)
        model.compile(keras.optimizers.Adam(1e-3))
        model.train_step(keras.ops.convert_to_tensor(images))
        encoders[objective, judged] = model.encoder.get_weights()
        decoders[objective, judged] = model.decoder.get_weights()

    def same(a, b):
        return all(np.allclose(x, y, rtol=0, atol=1e-7) for x, y in zip(a, b, strict=True))

    # Prior samples do not depend on the encoder: judged alone, the encoder learns the ELBO's step exactly ...
    assert same(encoders["adversarial", "samples"], encoders["elbo", "both"])
    # ... while judged reconstructions pass the discriminator's gradient back through it.
    assert not same(encoders["adversarial", "both"], encoders["elbo", "both"])
    # The decoder answers to the discriminator either way.
    assert not same(decoders["adversarial", "samples"], decoders["elbo", "both"])


def test_judging_samples_only_needs_the_adversarial_objective():
    from vae_gen.training.rules import SettingError
    from vae_gen.training.settings import TrainSettings

    with pytest.raises(SettingError, match="samples needs --objective adversarial"):
        TrainSettings(adversarial_images="samples")
    with pytest.raises(SettingError, match="adversarial_images"):
        TrainSettings(objective="adversarial", adversarial_images="reconstructions")
    assert TrainSettings().adversarial_images == "both"  # the first sharp models' choice, which their recipes record


def test_an_unconditional_run_with_a_class_weight_learns_a_class_head_and_exports_as_usual(tmp_path):
    import keras

    run = tmp_path / "run"
    argv = ["train", "--objective", "adversarial", "--arch", "conv", "--latent-dim", "4", "--class-weight", "1",
            *SLICE, "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    (epoch,) = json.loads((run / "history.json").read_text())
    assert np.isfinite(epoch["class_loss"]) and epoch["class_loss"] > 0
    discriminator = keras.saving.load_model(run / "discriminator.keras", compile=False)
    realness, class_logits = discriminator(np.zeros((2, 28, 28, 1), np.float32))
    assert realness.shape == (2, 1) and class_logits.shape == (2, 10)
    assert main(["export", str(run), "--out", str(tmp_path / "model")]) == 0
    generator = vae_gen.load(tmp_path / "model")
    assert generator.classes == () and generator.selftest().passed
