"""Training, export and the parity gate, on a tiny model (1 epoch, 2,000 images)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vae_gen
from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow


def test_loss_is_per_image_sums_averaged_over_the_batch():
    """BCE summed over pixels + KL summed over latents, each averaged over the batch."""
    from vae_gen.train.model import vae_losses

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (5, 28, 28, 1)).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (5, 28, 28, 1)).astype(np.float32)
    mu = rng.standard_normal((5, 3)).astype(np.float32)
    log_var = rng.standard_normal((5, 3)).astype(np.float32) * 0.5
    total, rec, kl = (float(t) for t in vae_losses(x, p, mu, log_var))
    expected_rec = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3)).mean()
    expected_kl = (-0.5 * (1 + log_var - mu**2 - np.exp(log_var))).sum(axis=1).mean()
    assert rec == pytest.approx(expected_rec, rel=1e-4)
    assert kl == pytest.approx(expected_kl, rel=1e-4)
    assert total == pytest.approx(expected_rec + expected_kl, rel=1e-4)


def test_sampling_layer_reparameterizes():
    import keras

    from vae_gen.train.model import Sampling

    mu = np.full((20000, 2), [1.0, -2.0], np.float32)
    log_var = np.full((20000, 2), [0.0, np.log(0.25)], np.float32)
    z = keras.ops.convert_to_numpy(Sampling(seed=0)([mu, log_var]))
    assert z.mean(axis=0) == pytest.approx([1.0, -2.0], abs=0.03)
    assert z.std(axis=0) == pytest.approx([1.0, 0.5], abs=0.03)


def test_run_folder(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == {
        "encoder.keras", "decoder.keras", "settings.json", "history.json", "metrics.json",
        "report-curves.png", "report-samples.png", "report-reconstructions.png", "report-latent.png",
        "report-manifold.png",  # the tiny model's latent is 2-D
    }  # fmt: skip
    from PIL import Image

    with Image.open(tiny_run / "report-samples.png") as samples:
        assert samples.size == (3 * (10 * 30 + 2), 3 * (10 * 30 + 2))  # 10 x 10 tiles, scale 3
    history = json.loads((tiny_run / "history.json").read_text())
    assert len(history) == 1
    for key in ("neg_elbo", "reconstruction", "kl", "val_neg_elbo", "val_reconstruction", "val_kl"):
        assert np.isfinite(history[0][key])
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    m = metrics["test_metrics"]
    assert m["neg_elbo"] == pytest.approx(m["reconstruction"] + m["kl"])
    assert 189.9 < m["neg_elbo"] < 600
    assert metrics["dataset"]["train_images"] == 2000 and metrics["dataset"]["test_images"] == 500
    # The logged test -ELBO is the mean over all test images, close to the numpy score of the final model.
    assert history[0]["val_neg_elbo"] == pytest.approx(m["neg_elbo"], rel=0.02)


def test_training_is_reproducible(tiny_run, tmp_path):
    from vae_gen.train.fit import TrainSettings, train

    settings = json.loads((tiny_run / "settings.json").read_text())
    again = train(TrainSettings(**settings), tmp_path / "again")
    first = json.loads((tiny_run / "metrics.json").read_text())["test_metrics"]
    assert again["test_metrics"] == pytest.approx(first, abs=1e-4)


def test_keras_files_load_in_safe_mode(tiny_run):
    import keras

    for name in ("encoder.keras", "decoder.keras"):
        keras.saving.load_model(tiny_run / name, safe_mode=True, compile=False)


def test_exported_folder(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert names == {"decoder.onnx", "encoder.onnx", "model.json", "decoder.keras", "encoder.keras"}
    card = vae_gen.ModelCard.load(tiny_model)
    assert card.parity["max_abs_diff"] <= 1e-5
    assert card.parity["batch_sizes"] == [1, 7, 256]
    assert card.test_metrics["neg_elbo"] > 189.9
    assert card.opset == 17


def test_no_random_ops_in_exported_graphs(tiny_model):
    import onnx

    from vae_gen.export.convert import RANDOM_OPS, graph_op_types

    for name in ("decoder.onnx", "encoder.onnx"):
        types = graph_op_types(onnx.load(tiny_model / name))
        assert types and not types & RANDOM_OPS, types
    encoder = onnx.load(tiny_model / "encoder.onnx")
    assert [o.name for o in encoder.graph.output] == ["z_mean", "z_log_var"]


def test_exported_model_runs_in_the_runtime(tiny_model):
    generator = vae_gen.load(tiny_model)
    assert generator.selftest().passed
    for batch in (1, 7, 300):
        assert generator.generate(batch, seed=1).shape == (batch, 28, 28)


def test_parity_command(tiny_model, capsys):
    assert main(["parity", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "parity passed" in out and "encoder" in out and "batch 256" in out


def test_parity_command_catches_a_changed_keras_model(tiny_model, tmp_path, capsys):
    import shutil

    import keras

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    decoder = keras.saving.load_model(folder / "decoder.keras", compile=False)
    weights = decoder.get_weights()
    weights[-1] = weights[-1] + 0.01  # nudge the last bias
    decoder.set_weights(weights)
    decoder.save(folder / "decoder.keras")
    assert main(["parity", str(folder)]) == 2
    assert "exceeds the tolerance 1e-05" in capsys.readouterr().err


def test_failed_parity_leaves_no_folder(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("vae_gen.export.parity_checks.PARITY_TOLERANCE", 0.0)
    out = tmp_path / "model"
    assert main(["export", str(tiny_run), "--out", str(out)]) == 2
    assert "exceeds the tolerance 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_existing_folder(tiny_run, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "model")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "model")]) == 2
    assert "settings.json: missing" in capsys.readouterr().err


def test_train_command(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--batch-size", "64", "--out", str(out)]
    assert main(argv) == 0
    assert "test -ELBO" in capsys.readouterr().out
    assert (out / "decoder.keras").is_file()
    assert main(argv) == 2  # never overwrites a run
    assert "already exists" in capsys.readouterr().err


def test_evaluate_reproduces_the_card(tiny_model, tmp_path, capsys):
    card = vae_gen.ModelCard.load(tiny_model)
    report_path = tmp_path / "report.json"
    assert main(["evaluate", str(tiny_model), "--test-limit", "500", "--report", str(report_path)]) == 0
    assert "NLL, importance-weighted (k=50)" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    for key in ("reconstruction", "kl", "neg_elbo", "iw_nll"):
        assert report[key] == pytest.approx(card.test_metrics[key], abs=0.5)
    # The importance-weighted bound is tighter than the ELBO.
    assert report["iw_nll"] < report["neg_elbo"]
    # Scored on the ONNX files, the -ELBO matches the Keras models' score with the same posterior samples.
    assert card.test_metrics["neg_elbo"] == pytest.approx(card.training["keras_test_metrics"]["neg_elbo"], abs=0.01)
    assert card.decoder_flops == (2 * 2 + 1) * 128 + (2 * 128 + 1) * 784
