"""`vae-gen quantize`: an int8 copy of a model folder that loads, checks itself and is scored."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DENSE2

import vae_gen
from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow  # onnx and the test images come with the train extra


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    out = tmp_path_factory.mktemp("quantize") / "dense2-int8"
    assert main(["quantize", DENSE2, "--out", str(out)]) == 0
    return out


def test_quantized_folder_is_a_working_int8_model(quantized):
    import onnx

    ops = {node.op_type for node in onnx.load(str(quantized / "decoder.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    generator = vae_gen.load(quantized)
    assert generator.name == "dense2-int8"
    assert generator.selftest().passed
    source = vae_gen.load(DENSE2)
    z = source.latents(256, seed=5)
    difference = np.abs(generator.decode(z) - source.decode(z))
    assert 0 < difference.mean() < 0.02  # really int8, and close to the float32 decoder


def test_encoder_holds_int8_weights_and_shrinks(quantized):
    import onnx

    ops = {node.op_type for node in onnx.load(str(quantized / "encoder.onnx")).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    source_size = (vae_gen.resolve_model(DENSE2) / "encoder.onnx").stat().st_size
    assert (quantized / "encoder.onnx").stat().st_size < source_size / 3


def test_card_records_the_source_the_difference_and_its_own_scores(quantized):
    card = vae_gen.ModelCard.load(quantized)
    source = vae_gen.ModelCard.load(vae_gen.resolve_model(DENSE2))
    assert card.keras_files == {}
    assert card.parity["reference"].startswith(DENSE2)
    assert card.extra["quantization"]["source_decoder_sha256"] == source.decoder.sha256
    assert card.encoder.sha256 != source.encoder.sha256
    # The encoder's int8 weights move its outputs a little, measured on the decoder's images.
    assert 0 < card.parity["encoder_mean_abs_diff"] <= card.parity["encoder_max_abs_diff"] < 0.5
    assert card.test_metrics["model"] == "dense2-int8"
    # int8 costs a little likelihood, never a miracle
    assert 0 < card.test_metrics["neg_elbo"] - source.test_metrics["neg_elbo"] < 5


def test_evaluate_reproduces_the_recorded_score(quantized, tmp_path):
    report = tmp_path / "evaluation.json"
    assert main(["evaluate", str(quantized), "--iw-images", "10", "--report", str(report)]) == 0
    recorded = vae_gen.ModelCard.load(quantized).test_metrics["neg_elbo"]
    assert abs(json.loads(report.read_text())["neg_elbo"] - recorded) < 0.5


def test_parity_of_a_quantized_folder_says_why_not(quantized, capsys):
    assert main(["parity", str(quantized)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no Keras models" in err and DENSE2 in err


def test_quantize_refuses_an_existing_folder(quantized, capsys):
    assert main(["quantize", DENSE2, "--out", str(quantized)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and len(err.splitlines()) == 1
    assert vae_gen.load(quantized).selftest().passed  # untouched


def test_info_names_what_the_int8_decoder_was_compared_with(quantized, capsys):
    assert main(["info", "--model", str(quantized)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("parity:"))
    assert f"max |onnx - {DENSE2} decoder.onnx (float32)|" in line and "mean" in line
    assert f"max |onnx - {DENSE2} encoder.onnx (float32)|" in line


def test_a_damaged_source_is_refused_before_anything_is_written(tmp_path, capsys):
    import shutil

    source = tmp_path / "source"
    shutil.copytree(vae_gen.resolve_model(DENSE2), source)
    (source / "encoder.onnx").write_bytes(b"replaced")
    assert main(["quantize", str(source), "--out", str(tmp_path / "int8")]) == 2
    assert "encoder.onnx: sha256" in capsys.readouterr().err
    assert not (tmp_path / "int8").exists()
