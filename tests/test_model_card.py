"""model.json validation and integrity checks: the runtime refuses, never guesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import vae_gen
from vae_gen import FORMAT_VERSION, ModelCard, ModelCardError, ModelIntegrityError


def _edit_card(folder: Path, edit) -> None:
    path = folder / "model.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_round_trip(shipped_model_copy):
    card = ModelCard.load(shipped_model_copy)
    assert ModelCard.from_dict(card.to_dict()) == card
    assert card.format_version == FORMAT_VERSION
    assert card.decoder.inputs == ("z",) and card.decoder.outputs == ("image",)
    assert card.encoder.outputs == ("z_mean", "z_log_var")
    for key in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        assert card.versions[key]
    assert card.parity["max_abs_diff"] <= card.parity["tolerance"] == 1e-5
    assert 189.9 < card.test_metrics["neg_elbo"] < 300


@pytest.mark.parametrize("field", ["latent_dim", "decoder", "golden", "format_version", "name", "image_shape"])
def test_missing_field_is_named(shipped_model_copy, field):
    _edit_card(shipped_model_copy, lambda d: d.pop(field))
    with pytest.raises(ModelCardError, match=f"model.json: missing field '{field}'"):
        vae_gen.load(shipped_model_copy)


def test_missing_nested_field_is_named(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d["decoder"].pop("sha256"))
    with pytest.raises(ModelCardError, match=r"missing field 'decoder\.sha256'"):
        vae_gen.load(shipped_model_copy)


def test_unknown_format_version(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d.update(format_version=99))
    with pytest.raises(ModelCardError, match="format_version 99 is not supported"):
        vae_gen.load(shipped_model_copy)


@pytest.mark.parametrize("bad", [True, "2", 0, -1])
def test_bad_latent_dim_type_or_value(shipped_model_copy, bad):
    _edit_card(shipped_model_copy, lambda d: d.update(latent_dim=bad))
    with pytest.raises(ModelCardError, match="latent_dim"):
        vae_gen.load(shipped_model_copy)


def test_missing_card(shipped_model_copy):
    (shipped_model_copy / "model.json").unlink()
    with pytest.raises(ModelCardError, match=r"model\.json: missing"):
        vae_gen.load(shipped_model_copy)


def test_card_not_json(shipped_model_copy):
    (shipped_model_copy / "model.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        vae_gen.load(shipped_model_copy)


def test_file_outside_folder_is_refused(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d["decoder"].update(file="../decoder.onnx"))
    with pytest.raises(ModelCardError, match="plain file name"):
        vae_gen.load(shipped_model_copy)


def test_truncated_onnx_fails_checksum(shipped_model_copy):
    path = shipped_model_copy / "decoder.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError, match=r"decoder\.onnx: sha256 .* does not match"):
        vae_gen.load(shipped_model_copy)


def test_replaced_onnx_fails_checksum(shipped_model_copy):
    shutil.copy(shipped_model_copy / "encoder.onnx", shipped_model_copy / "decoder.onnx")
    with pytest.raises(ModelIntegrityError, match=r"decoder\.onnx"):
        vae_gen.load(shipped_model_copy)


def test_missing_onnx(shipped_model_copy):
    (shipped_model_copy / "decoder.onnx").unlink()
    with pytest.raises(ModelIntegrityError, match=r"decoder\.onnx: missing"):
        vae_gen.load(shipped_model_copy)


def test_names_disagreeing_with_graph(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d["decoder"].update(inputs=["latent"]))
    with pytest.raises(ModelIntegrityError, match=r"disagree with model\.json"):
        vae_gen.load(shipped_model_copy)


def test_latent_dim_disagreeing_with_graph(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d.update(latent_dim=3))
    with pytest.raises(ModelIntegrityError, match="latent_dim 3"):
        vae_gen.load(shipped_model_copy)


def test_selftest_fails_on_wrong_golden(shipped_model_copy):
    def shift(d):
        d["golden"]["images"][0][300] += 0.01

    _edit_card(shipped_model_copy, shift)
    result = vae_gen.load(shipped_model_copy).selftest()
    assert not result.passed
    assert result.max_abs_diff == pytest.approx(0.01, abs=1e-4)
