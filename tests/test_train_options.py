"""The conv architecture and the training options: KL warm-up, cosine schedule, keeping the best epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import vae_gen

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def tiny_conv_run(tmp_path_factory):
    from vae_gen.train.fit import TrainSettings, train

    out = tmp_path_factory.mktemp("conv") / "run"
    settings = TrainSettings(
        arch="conv", latent_dim=8, epochs=2, train_limit=1000, test_limit=300,
        kl_warmup_epochs=2, lr_schedule="cosine", keep_best=True,
    )  # fmt: skip
    train(settings, out)
    return out


def test_report_of_a_larger_latent_uses_principal_components(tiny_conv_run):
    names = {p.name for p in tiny_conv_run.glob("report-*.png")}
    assert names == {"report-curves.png", "report-samples.png", "report-reconstructions.png", "report-latent.png"}


def test_report_command_rewrites_the_pictures(tiny_conv_run, capsys):
    from vae_gen.cli import main

    (tiny_conv_run / "report-latent.png").unlink()
    assert main(["report", str(tiny_conv_run)]) == 0
    assert (tiny_conv_run / "report-latent.png").is_file()
    assert capsys.readouterr().out.count("wrote") == 4


def test_conv_run_records_its_options(tiny_conv_run):
    settings = json.loads((tiny_conv_run / "settings.json").read_text())
    assert settings["arch"] == "conv" and settings["kl_warmup_epochs"] == 2
    assert settings["lr_schedule"] == "cosine" and settings["keep_best"] is True
    summary = json.loads((tiny_conv_run / "metrics.json").read_text())
    history = json.loads((tiny_conv_run / "history.json").read_text())
    # Warm-up of 2 epochs: only the last epoch trains on the full KL, so it is the one kept.
    assert summary["best_epoch"] == 2
    assert len(history) == 2


def test_conv_export_passes_parity(tiny_conv_run, tmp_path):
    from vae_gen.export.exporter import export_run

    card = export_run(tiny_conv_run, tmp_path / "conv", name="conv")
    assert card.architecture == "conv" and card.latent_dim == 8
    assert card.parity["max_abs_diff"] <= 1e-5
    generator = vae_gen.load(tmp_path / "conv")
    assert generator.selftest().passed
    assert generator.generate(5, seed=0).shape == (5, 28, 28)


def test_kl_warmup_weights():
    from vae_gen.train.fit import KlWarmup
    from vae_gen.train.model import build_vae

    vae = build_vae("dense", 2, seed=0)
    warmup = KlWarmup(4)
    warmup.set_model(vae)
    seen = []
    for epoch in range(6):
        warmup.on_epoch_begin(epoch)
        seen.append(float(vae.kl_weight.numpy()))
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_keep_best_restores_the_best_eligible_epoch():
    from vae_gen.train.fit import KeepBest
    from vae_gen.train.model import build_vae

    vae = build_vae("dense", 2, seed=0)
    keep = KeepBest(first_eligible_epoch=1)
    keep.set_model(vae)
    snapshots = []
    for epoch, value in enumerate([100.0, 300.0, 250.0, 260.0]):  # epoch 0 is in warm-up: not eligible
        vae.set_weights([w + 1.0 for w in vae.get_weights()])  # stands in for one epoch of training
        snapshots.append([w.copy() for w in vae.get_weights()])
        keep.on_epoch_end(epoch, {"val_neg_elbo": value})
    keep.restore()
    assert keep.best_epoch == 3 and keep.best_value == 250.0
    assert all(np.array_equal(a, b) for a, b in zip(vae.get_weights(), snapshots[2]))


def test_unknown_schedule_is_refused(tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        train(TrainSettings(lr_schedule="linear", train_limit=10, test_limit=10), tmp_path / "run")


def test_nondeterministic_flag_is_recorded(tmp_path):
    from vae_gen.cli import main

    out = tmp_path / "run"
    argv = ["train", "--nondeterministic", "--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "settings.json").read_text())["deterministic"] is False


@pytest.fixture(scope="module")
def tiny_residual_bf16_run(tmp_path_factory):
    from vae_gen.train.fit import TrainSettings, train

    out = tmp_path_factory.mktemp("residual") / "run"
    settings = TrainSettings(
        arch="residual", latent_dim=8, epochs=1, train_limit=512, test_limit=256,
        precision="mixed_bfloat16", deterministic=False,
    )  # fmt: skip
    train(settings, out)
    return out


def test_mixed_precision_run_saves_float32_models(tiny_residual_bf16_run):
    import keras

    for name in ("encoder.keras", "decoder.keras"):
        model = keras.saving.load_model(tiny_residual_bf16_run / name, compile=False, safe_mode=True)
        assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}, name
    assert json.loads((tiny_residual_bf16_run / "settings.json").read_text())["precision"] == "mixed_bfloat16"


def test_mixed_precision_residual_export_passes_parity(tiny_residual_bf16_run, tmp_path):
    from vae_gen.export.exporter import export_run

    card = export_run(tiny_residual_bf16_run, tmp_path / "residual", name="residual")
    assert card.architecture == "residual"
    assert card.parity["max_abs_diff"] <= 1e-5
    assert vae_gen.load(tmp_path / "residual").selftest().passed


def test_unknown_precision_is_refused(tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    with pytest.raises(ValueError, match="unknown precision 'float8'; known: float32, mixed_bfloat16"):
        train(TrainSettings(precision="float8"), tmp_path / "run")


@pytest.mark.parametrize("momentum", [1.0, -0.5])
def test_ema_momentum_outside_0_to_1_is_refused(momentum, tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    with pytest.raises(ValueError, match=rf"EMA momentum {momentum}: must be >= 0 and < 1"):
        train(TrainSettings(ema_momentum=momentum), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_train_command_offers_exactly_the_architectures_precisions_and_deepenable_decoders():
    # The CLI lists them itself so that it parses without TensorFlow; this keeps the lists in step.
    from vae_gen.cli import build_parser
    from vae_gen.cli_training import DEEPENABLE_ARCHS
    from vae_gen.train.model import (
        ARCHITECTURES,
        DEEP_DECODERS,
        ENCODER_MAPS,
        MAPPED_ENCODERS,
        PRECISIONS,
    )

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = {a.dest: a.choices for a in commands["train"]._actions}
    assert list(options["arch"]) == list(ARCHITECTURES)
    assert list(options["precision"]) == list(PRECISIONS)
    assert list(options["encoder_map"]) == list(ENCODER_MAPS)
    assert list(DEEPENABLE_ARCHS) == list(DEEP_DECODERS) == list(MAPPED_ENCODERS)


def test_mirroring_flips_only_mirrorable_images_about_half_the_time():
    import tensorflow as tf
    from vae_gen.train.fit import _mirror_at_random

    images = np.random.default_rng(0).random((1000, 28, 28, 1)).astype(np.float32)
    mirrorable = np.arange(1000) % 2 == 0
    dataset = tf.data.Dataset.from_tensor_slices((images, mirrorable)).map(_mirror_at_random(seed=0))
    out = np.stack([x.numpy() for x in dataset])
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    unchanged = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert (mirrored | unchanged).all()
    assert unchanged[~mirrorable].all()
    assert 0.4 < mirrored[mirrorable].mean() < 0.6


def test_mirrored_run_trains_and_records_it(tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    settings = TrainSettings(arch="dense", epochs=1, train_limit=512, test_limit=128, mirror=True)
    summary = train(settings, tmp_path / "run")
    assert summary["settings"]["mirror"] is True
    assert np.isfinite(summary["test_metrics"]["neg_elbo"])


def test_mirrored_classes_are_those_whose_mean_image_is_nearly_symmetric():
    # Recomputes the figures behind MIRRORED_CLASSES: sum over the 784 pixels of
    # |class mean - its mirror image| is 16-25 for the mirrored classes, 43 for
    # trousers and 76-233 for the footwear.
    from vae_gen.train.data import load_fashion_mnist
    from vae_gen.train.fit import MIRRORED_CLASSES

    data = load_fashion_mnist()
    asymmetry = {}
    for label in range(10):
        mean = data.train_images[data.train_labels == label].mean(axis=0) / 255.0
        asymmetry[label] = float(np.abs(mean - mean[:, ::-1]).sum())
    assert {label for label, a in asymmetry.items() if a < 30} == set(MIRRORED_CLASSES)
    assert max(asymmetry[label] for label in MIRRORED_CLASSES) < 26 < 40 < asymmetry[1] < 50 < 75 < min(asymmetry[5], asymmetry[7], asymmetry[9])


def test_decoder_blocks_deepen_the_residual_decoder_only():
    import keras
    from vae_gen.train.model import build_networks

    def residual_blocks(decoder):
        return sum(isinstance(layer, keras.layers.Add) for layer in decoder.layers)

    _, shallow = build_networks("residual", 4)
    _, deep = build_networks("residual", 4, decoder_blocks=2)
    assert (residual_blocks(shallow), residual_blocks(deep)) == (2, 4)
    assert deep.output_shape == shallow.output_shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="decoder blocks 2: only the residual architecture has them"):
        build_networks("conv", 4, decoder_blocks=2)


def test_decoder_hidden_puts_hidden_dense_layers_before_the_residual_decoders_map_only():
    import keras
    from vae_gen.train.model import build_networks

    def dense_units(decoder):
        return [layer.units for layer in decoder.layers if isinstance(layer, keras.layers.Dense)]

    _, plain = build_networks("residual", 4)
    _, one = build_networks("residual", 4, decoder_hidden=(16,))
    _, two = build_networks("residual", 4, decoder_hidden=(32, 16))
    assert dense_units(plain) == [7 * 7 * 64]
    assert dense_units(one) == [16, 7 * 7 * 64]
    assert dense_units(two) == [32, 16, 7 * 7 * 64]
    assert one.output_shape == two.output_shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="decoder hidden layers 32 16: only the residual architecture has them"):
        build_networks("conv", 4, decoder_hidden=(32, 16))


def test_encoder_map_4_adds_a_stride_2_convolution_to_the_residual_encoder_only():
    import keras
    from vae_gen.train.model import build_networks

    def last_map_and_dense_inputs(encoder):
        convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
        dense = next(layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense))
        return convs[-1].output.shape[1:], dense.kernel.shape[0]

    seven, _ = build_networks("residual", 4)
    four, _ = build_networks("residual", 4, encoder_map=4)
    assert last_map_and_dense_inputs(seven) == ((7, 7, 128), 7 * 7 * 128)
    assert last_map_and_dense_inputs(four) == ((4, 4, 128), 4 * 4 * 128)
    assert [o.shape for o in four.outputs] == [o.shape for o in seven.outputs] == [(None, 4), (None, 4)]
    with pytest.raises(ValueError, match="encoder map 4: only the residual architecture has it"):
        build_networks("conv", 4, encoder_map=4)
    with pytest.raises(ValueError, match="encoder map 5: must be one of 7, 4"):
        build_networks("residual", 4, encoder_map=5)


def test_train_command_refuses_encoder_map_for_other_architectures_and_other_sides(tmp_path, capsys):
    from vae_gen.cli import main

    assert main(["train", "--arch", "conv", "--encoder-map", "4", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "vae-gen train: error: --encoder-map 4: only --arch residual has it"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--arch", "residual", "--encoder-map", "5", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "argument --encoder-map: invalid choice: 5 (choose from 7, 4)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_steps_run_16_per_call_train_exactly_as_one_per_call(tmp_path, monkeypatch):
    """21 steps of batch 8 (the last holds 4 images): 16 per call into the graph and then 5 must reach the
    same weights as 21 single calls, so no step, not even the short last one, is lost."""
    import keras
    from vae_gen.train import fit

    def decoder_weights(name):
        settings = fit.TrainSettings(arch="dense", epochs=2, batch_size=8, train_limit=164, test_limit=16)
        fit.train(settings, tmp_path / name)
        return keras.saving.load_model(tmp_path / name / "decoder.keras").get_weights()

    assert fit.STEPS_PER_EXECUTION == 16
    batched = decoder_weights("sixteen")
    monkeypatch.setattr(fit, "STEPS_PER_EXECUTION", 1)
    single = decoder_weights("one")
    for a, b in zip(batched, single, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_command_refuses_decoder_hidden_for_other_architectures(tmp_path, capsys):
    from vae_gen.cli import main

    assert main(["train", "--arch", "conv", "--decoder-hidden", "256", "64", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "vae-gen train: error: --decoder-hidden 256 64: only --arch residual has hidden layers; --arch conv has none"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["0", "-1", "wide", "1.5"])
def test_train_command_refuses_a_bad_decoder_hidden(value, tmp_path, capsys):
    from vae_gen.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--arch", "residual", f"--decoder-hidden={value}", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert f"argument --decoder-hidden: must be an integer >= 1, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_command_refuses_decoder_blocks_for_other_architectures(tmp_path, capsys):
    from vae_gen.cli import main

    assert main(["train", "--arch", "conv", "--decoder-blocks", "3", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "vae-gen train: error: --decoder-blocks 3: only --arch residual has them; --arch conv takes 1"
    )
    assert not (tmp_path / "run").exists()


def test_deeper_residual_run_with_a_4x4_encoder_map_trains_exports_and_records_its_options(tmp_path):
    from vae_gen.export.exporter import export_run
    from vae_gen.train.fit import TrainSettings, train

    settings = TrainSettings(
        arch="residual", latent_dim=4, epochs=1, train_limit=256, test_limit=64,
        decoder_blocks=2, decoder_hidden=(16, 8), encoder_map=4,
    )  # fmt: skip
    summary = train(settings, tmp_path / "run")
    recorded = summary["settings"]
    assert (recorded["decoder_blocks"], recorded["decoder_hidden"], recorded["encoder_map"]) == (2, (16, 8), 4)
    card = export_run(tmp_path / "run", tmp_path / "model", name="deep")
    assert card.parity["max_abs_diff"] <= 1e-5


def test_weight_decay_shrinks_kernels_not_biases():
    import keras
    from vae_gen.train.fit import TrainSettings, build_optimizer

    optimizer = build_optimizer(TrainSettings(learning_rate=0.1, weight_decay=0.5), steps_per_epoch=10)
    layer = keras.layers.Dense(3, kernel_initializer="ones", bias_initializer="ones")
    layer.build((None, 2))
    zeros = [keras.ops.zeros_like(v) for v in layer.trainable_variables]
    optimizer.apply_gradients(zip(zeros, layer.trainable_variables))
    # A zero gradient leaves Adam's step at 0: what moves is the decay alone, by learning rate x decay.
    np.testing.assert_allclose(layer.kernel.numpy(), np.full((2, 3), 1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(layer.bias.numpy(), np.ones(3))


def test_no_weight_decay_by_default():
    from vae_gen.train.fit import TrainSettings, build_optimizer

    assert build_optimizer(TrainSettings(), steps_per_epoch=10).weight_decay is None


def test_encoder_noise_perturbs_the_encoders_input_only_while_training():
    from vae_gen.train.model import build_vae

    images = np.full((64, 28, 28, 1), 0.5, dtype="float32")
    noisy_vae = build_vae("dense", 2, seed=0, encoder_noise=0.2)
    first = np.asarray(noisy_vae.encoder_input(images, training=True))
    second = np.asarray(noisy_vae.encoder_input(images, training=True))
    assert abs(float(np.std(first - images)) - 0.2) < 0.01
    assert abs(float(np.mean(first - images))) < 0.01
    assert not np.array_equal(first, second)  # fresh noise every step
    # Scoring (test_step, evaluation) always sees the clean images, and without the option training does too.
    np.testing.assert_array_equal(np.asarray(noisy_vae.encoder_input(images, training=False)), images)
    clean_vae = build_vae("dense", 2, seed=0)
    np.testing.assert_array_equal(np.asarray(clean_vae.encoder_input(images, training=True)), images)


def test_encoder_noise_changes_training_and_is_recorded(tmp_path):
    from vae_gen.cli import main

    def run(name, *options):
        out = tmp_path / name
        argv = ["train", "--epochs", "1", "--train-limit", "256", "--test-limit", "128", *options, "--out", str(out)]
        assert main(argv) == 0
        return json.loads((out / "settings.json").read_text()), json.loads((out / "metrics.json").read_text())

    plain_settings, plain_metrics = run("plain")
    noisy_settings, noisy_metrics = run("noisy", "--encoder-noise", "0.3")
    assert (plain_settings["encoder_noise"], noisy_settings["encoder_noise"]) == (0.0, 0.3)
    assert noisy_metrics["test_metrics"]["neg_elbo"] != plain_metrics["test_metrics"]["neg_elbo"]


def test_ema_saves_and_keeps_the_moving_average_of_the_weights(tmp_path):
    """One training step per epoch (a 32-image slice, batch 32, constant learning rate), so the weights after
    each step are those of a plain run of that many epochs. With momentum 0.5 the average after two steps is
    (w1 + w2) / 2: what the run must save, and what --keep-best must keep (epoch 2 is the better one)."""
    import keras
    from vae_gen.cli import main

    def run(name, *options):
        out = tmp_path / name
        argv = ["train", "--train-limit", "32", "--batch-size", "32", "--test-limit", "64", *options, "--out", str(out)]
        assert main(argv) == 0
        return out

    def decoder_weights(out):
        return keras.saving.load_model(out / "decoder.keras").get_weights()

    after_one = decoder_weights(run("one", "--epochs", "1"))
    after_two = decoder_weights(run("two", "--epochs", "2"))
    averaged = run("ema", "--epochs", "2", "--ema", "0.5", "--keep-best")
    summary = json.loads((averaged / "metrics.json").read_text())
    assert summary["settings"]["ema_momentum"] == 0.5 and summary["best_epoch"] == 2
    saved_weights = decoder_weights(averaged)
    for w1, w2, saved in zip(after_one, after_two, saved_weights, strict=True):
        np.testing.assert_allclose(saved, (w1 + w2) / 2, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(w2, saved) for w2, saved in zip(after_two, saved_weights, strict=True))


NON_NEGATIVE = "must be a finite number >= 0"
BAD_REGULARIZER_VALUES = [
    *[("--weight-decay", value, NON_NEGATIVE) for value in ["-0.1", "nan", "inf", "lots"]],
    *[("--encoder-noise", value, NON_NEGATIVE) for value in ["-0.1", "nan", "inf", "lots"]],
    *[("--ema", value, "must be a number >= 0 and < 1") for value in ["-0.1", "1", "1.5", "nan", "lots"]],
]


@pytest.mark.parametrize(("option", "value", "allowed"), BAD_REGULARIZER_VALUES)
def test_train_command_refuses_a_bad_regularizer_value(option, value, allowed, tmp_path, capsys):
    from vae_gen.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"{option}={value}", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert f"argument {option}: {allowed}, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
