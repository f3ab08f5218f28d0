"""The conv architecture and the training options: KL warm-up, cosine schedule, keeping the best epoch."""

from __future__ import annotations

import json
from pathlib import Path

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
    from vae_gen.cli.commands import main

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


def test_the_kl_weight_scales_the_objective_and_its_warmup_but_not_the_reported_elbo():
    import keras

    from vae_gen.train.fit import KlWarmup, build_model
    from vae_gen.training.settings import TrainSettings

    vae = build_model(TrainSettings(arch="dense", latent_dim=2, kl_weight=2.0), (28, 28, 1), classes=0)
    assert float(vae.kl_weight.numpy()) == 2.0
    warmup = KlWarmup(2, kl_weight=2.0)
    warmup.set_model(vae)
    seen = []
    for epoch in range(3):
        warmup.on_epoch_begin(epoch)
        seen.append(float(vae.kl_weight.numpy()))
    assert seen == [1.0, 2.0, 2.0]
    # One step: the metric is the true -ELBO (reconstruction + KL), whatever the objective's beta.
    images = keras.ops.convert_to_tensor(np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32))
    vae.compile(keras.optimizers.Adam(1e-3))
    logs = vae.train_step(images)
    assert np.isclose(float(logs["neg_elbo"]), float(logs["reconstruction"]) + float(logs["kl"]), rtol=1e-5)
    assert TrainSettings().kl_weight == 1.0  # every shipped model's


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
    keep.restore(vae)
    assert keep.best_epoch == 3 and keep.best_value == 250.0
    assert all(np.array_equal(a, b) for a, b in zip(vae.get_weights(), snapshots[2], strict=True))


def test_nondeterministic_flag_is_recorded(tmp_path):
    from vae_gen.cli.commands import main

    out = tmp_path / "run"
    argv = ["train", "--nondeterministic", "--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "settings.json").read_text())["deterministic"] is False


@pytest.fixture(scope="module")
def tiny_residual_bf16_run(tmp_path_factory):
    from vae_gen.train.fit import TrainSettings, train

    out = tmp_path_factory.mktemp("residual") / "run"
    settings = TrainSettings(
        arch="residual", latent_dim=8, epochs=1, train_limit=512, test_limit=256, batch_size=128,
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


def test_weight_decay_shrinks_kernels_not_biases():
    import keras

    from vae_gen.train.fit import TrainSettings, build_optimizer

    optimizer = build_optimizer(TrainSettings(learning_rate=0.1, weight_decay=0.5), steps_per_epoch=10)
    layer = keras.layers.Dense(3, kernel_initializer="ones", bias_initializer="ones")
    layer.build((None, 2))
    zeros = [keras.ops.zeros_like(v) for v in layer.trainable_variables]
    optimizer.apply_gradients(zip(zeros, layer.trainable_variables, strict=True))
    # A zero gradient leaves Adam's step at 0: what moves is the decay alone, by learning rate x decay.
    np.testing.assert_allclose(layer.kernel.numpy(), np.full((2, 3), 1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(layer.bias.numpy(), np.ones(3))


def test_no_weight_decay_by_default():
    from vae_gen.train.fit import TrainSettings, build_optimizer

    assert build_optimizer(TrainSettings(), steps_per_epoch=10).weight_decay is None




def test_residual_architecture_builds_the_shipped_default_networks():
    """The residual architecture has the default's hidden Dense(64) and 4x4 encoder map built in: the networks
    it builds have the shipped default's layers and weight shapes, so its recipe retrains the same graphs."""
    import keras

    from vae_gen.train.model import build_networks

    encoder, decoder = build_networks("residual", 32)
    folder = Path(__file__).resolve().parent.parent / "models" / "fashion-mnist-residual32"  # the wheel has no .keras
    for built, file in ((encoder, "encoder.keras"), (decoder, "decoder.keras")):
        shipped = keras.saving.load_model(folder / file, compile=False, safe_mode=True)
        assert [type(layer).__name__ for layer in built.layers] == [type(layer).__name__ for layer in shipped.layers]
        assert [w.shape for w in built.get_weights()] == [w.shape for w in shipped.get_weights()], file


def test_architectures_are_those_the_settings_offer():
    # The CLI and the settings list the architectures without TensorFlow; this keeps the builders in step.
    from vae_gen.train.model import ARCHITECTURES
    from vae_gen.training.settings import ARCHITECTURES as OFFERED

    assert tuple(ARCHITECTURES) == OFFERED


def test_a_runs_settings_json_is_a_config_that_reproduces_its_settings(tiny_conv_run, tmp_path, capsys):
    from vae_gen.cli.commands import main
    from vae_gen.training.settings import TrainSettings

    recorded = TrainSettings.from_file(tiny_conv_run / "settings.json")
    assert recorded == TrainSettings(
        arch="conv", latent_dim=8, epochs=2, train_limit=1000, test_limit=300,
        kl_warmup_epochs=2, lr_schedule="cosine", keep_best=True,
        batch_size=16,  # left to the data: 1,000 images give 63 steps an epoch at 16 (8 at 128); recorded as a number
    )  # fmt: skip
    # The run folder's settings as --config, two of them overridden on the command line.
    out = tmp_path / "again"
    argv = ["train", "--config", str(tiny_conv_run / "settings.json"), "--epochs", "1", "--no-keep-best",
            "--train-limit", "256", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert TrainSettings.from_file(out / "settings.json") == recorded.replace(epochs=1, keep_best=False, train_limit=256)
