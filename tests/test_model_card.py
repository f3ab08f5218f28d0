"""model.json validation and integrity checks: the runtime refuses, never guesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import vae_gen
from vae_gen import ModelCard, ModelCardError, ModelIntegrityError


def _edit_card(folder: Path, edit) -> None:
    path = folder / "model.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_round_trip(shipped_model_copy):
    card = ModelCard.load(shipped_model_copy)
    assert ModelCard.from_dict(card.to_dict()) == card
    assert card.format_version == 1  # the shipped models' cards predate format 2, and still load
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
    with pytest.raises(ModelCardError, match=r"format_version 99 is not supported \(this vae-gen reads 1, 2, 3\); a newer"):
        vae_gen.load(shipped_model_copy)


FORMAT_1_FOLDER = Path(__file__).parent / "fixtures" / "format1-tiny"


def test_a_frozen_format_1_folder_still_loads_generates_and_passes_its_golden_checks():
    generator = vae_gen.load(FORMAT_1_FOLDER)
    assert generator.card.format_version == 1 and generator.card.origin == {"kind": "trained"}
    assert generator.selftest().passed
    assert generator.generate(3, seed=0).shape == (3, 28, 28)
    assert generator.encode(generator.decode(generator.latents(2)))[0].shape == (2, 2)
    # Read and written back, a format-1 card is what it was: no field of a later format appears in it.
    assert generator.card.to_dict() == json.loads((FORMAT_1_FOLDER / "model.json").read_text())


def as_format_2(data: dict) -> None:
    data.update(format_version=2, origin={"kind": "keras", "decoder": "decoder.keras"})


def test_format_2_encoder_may_be_null(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: (as_format_2(d), d.update(encoder=None, test_metrics={})))
    (shipped_model_copy / "encoder.onnx").unlink()
    generator = vae_gen.load(shipped_model_copy)
    assert not generator.has_encoder and generator.card.files == (generator.card.decoder,)
    assert generator.selftest().passed
    with pytest.raises(vae_gen.InvalidArgumentError, match="has no encoder"):
        generator.encode(np.zeros((1, 28, 28, 1), np.float32))
    assert ModelCard.from_dict(generator.card.to_dict()) == generator.card


def test_format_1_needs_its_encoder(shipped_model_copy):
    _edit_card(shipped_model_copy, lambda d: d.update(encoder=None))
    with pytest.raises(ModelCardError, match="field 'encoder' must be dict, got NoneType"):
        vae_gen.load(shipped_model_copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(image_shape=[28, 28, 2]), r"image_shape's C must be 1 \(grayscale\) or 3 \(RGB\), got 2"),
        (lambda d: d.update(value_range=[1, 0]), r"value_range must be \[low, high\], finite numbers with low < high"),
        (lambda d: d.update(value_range=[0, "1"]), r"value_range must be \[low, high\]"),
        (lambda d: d.pop("origin"), "missing field 'origin'"),
        (lambda d: d.update(origin={"kind": "downloaded"}), "'origin.kind' must be one of trained, keras"),
    ],
)
def test_format_2_fields_are_checked(shipped_model_copy, edit, message):
    _edit_card(shipped_model_copy, lambda d: (as_format_2(d), edit(d)))
    with pytest.raises(ModelCardError, match=message):
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
    def to_3(d):  # the card consistent with itself (its golden latents 3 wide too), not with its graph
        d.update(latent_dim=3)
        d["golden"]["latents"] = [row[:3] for row in d["golden"]["latents"]]

    _edit_card(shipped_model_copy, to_3)
    with pytest.raises(ModelIntegrityError, match="latent_dim 3"):
        vae_gen.load(shipped_model_copy)


def test_selftest_fails_on_wrong_golden(shipped_model_copy):
    def shift(d):
        d["golden"]["images"][0][300] += 0.01

    _edit_card(shipped_model_copy, shift)
    result = vae_gen.load(shipped_model_copy).selftest()
    assert not result.passed
    assert result.max_abs_diff == pytest.approx(0.01, abs=1e-4)
