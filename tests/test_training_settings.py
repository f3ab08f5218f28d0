"""Training settings, recipes and the train command's options: checked without TensorFlow, in both environments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vae_gen
from vae_gen.cli.commands import build_parser, main
from vae_gen.training.rules import SettingError
from vae_gen.training.settings import RETIRED, TrainSettings, names, option_of

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.mark.parametrize("model", vae_gen.list_models())
def test_each_shipped_model_was_trained_with_its_recipe(model):
    # A quantized copy records the training of the model it was made from.
    card = json.loads((vae_gen.resolve_model(model) / "model.json").read_text())
    source = card["extra"].get("quantization", {}).get("source", model)
    recipe = RECIPES / f"{source}.json"
    assert recipe.is_file(), f"no recipe for {model}: add {recipe}"
    # Strictly: a removed option the card records must hold the value that means what the code does now.
    recorded = {key: value for key, value in card["training"].items() if key in names() or key in RETIRED}
    if isinstance(recorded.get("data"), dict):  # before `data` was a setting: facts about Fashion-MNIST
        del recorded["data"]
    assert TrainSettings.from_dict(recorded) == TrainSettings.from_file(recipe)


def test_recipes_hold_every_setting_and_no_other():
    for recipe in RECIPES.glob("*.json"):
        assert list(json.loads(recipe.read_text())) == names(), recipe


def test_settings_round_trip_through_json():
    settings = TrainSettings.from_file(RECIPES / "fashion-mnist-residual32.json")
    assert TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latent_dim": 0}, "latent_dim must be an integer >= 1, got 0"),
        ({"latent_dim": 2.5}, "latent_dim must be an integer >= 1, got 2.5"),
        ({"epochs": True}, "epochs must be an integer >= 1, got True"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0, got 0"),
        ({"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0, got nan"),
        ({"arch": "transformer"}, "arch must be one of dense, conv, residual, got 'transformer'"),
        ({"precision": "float8"}, "precision must be one of float32, mixed_bfloat16, got 'float8'"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of constant, cosine, got 'linear'"),
        ({"keep_best": "yes"}, "keep_best must be true or false, got 'yes'"),
        ({"seed": -1}, "seed must be an integer from 0 to 18446744073709551615, got -1"),
        ({"train_limit": 0}, "train_limit must be an integer >= 1 (or null: all), got 0"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(changes, message):
    with pytest.raises(SettingError) as error:
        TrainSettings(**changes)
    assert str(error.value) == message
    assert isinstance(error.value, vae_gen.InvalidArgumentError)


def test_replace_refuses_an_unknown_setting():
    with pytest.raises(SettingError, match=r"latent is not a training setting; known: data, image_size, .*, arch, latent_dim"):
        TrainSettings().replace(latent=3)


def test_a_settings_file_names_its_path_and_the_bad_field(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"arch": "conv", "epochs": 0}))
    with pytest.raises(SettingError, match=rf"^{path}: epochs must be an integer >= 1, got 0$"):
        TrainSettings.from_file(path)
    path.write_text(json.dumps({"arch": "conv", "epoch": 3}))
    with pytest.raises(SettingError, match=rf"^{path}: epoch is not a training setting"):
        TrainSettings.from_file(path)
    path.write_text("{not json")
    with pytest.raises(vae_gen.InvalidArgumentError, match="not a readable JSON settings file"):
        TrainSettings.from_file(path)


def test_a_removed_option_is_accepted_only_where_it_meant_what_the_code_does_now():
    # Run folders of earlier versions record the removed options; switched off, they still load.
    old = {"arch": "residual", "mirror": False, "decoder_blocks": 1, "encoder_noise": 0.0, "ema_momentum": 0.0,
           "decoder_hidden": [64], "encoder_map": 4}  # fmt: skip
    assert TrainSettings.from_dict(old) == TrainSettings(arch="residual")
    assert TrainSettings.from_dict({"arch": "conv", "decoder_hidden": [], "encoder_map": 7}) == TrainSettings(arch="conv")
    for key, value in [("mirror", True), ("ema_momentum", 0.999), ("encoder_map", 7), ("decoder_hidden", [256, 64])]:
        with pytest.raises(SettingError, match=rf"{key} .* was an option that vae-gen no longer has"):
            TrainSettings.from_dict(old | {key: value})


def test_every_setting_is_a_train_option_and_every_removed_option_is_gone():
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = {s for action in commands["train"]._actions for s in action.option_strings}
    assert {option_of(name) for name in names()} <= options
    for removed in ("--mirror", "--decoder-blocks", "--encoder-noise", "--ema", "--decoder-hidden", "--encoder-map"):
        assert removed not in options


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--latent-dim", "0"], "argument --latent-dim: must be an integer >= 1, got 0"),
        (["--latent-dim", "two"], "argument --latent-dim: must be an integer >= 1, got 'two'"),
        (["--arch", "mlp"], "argument --arch: must be one of dense, conv, residual, got 'mlp'"),
        (["--weight-decay=-1"], "argument --weight-decay: must be a finite number >= 0, got -1.0"),
        (["--kl-warmup", "-2"], "argument --kl-warmup: must be an integer >= 0, got -2"),
    ],
)
def test_train_refuses_a_bad_option_before_anything_loads(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_bad_config_in_one_line_before_tensorflow_loads(tmp_path):
    # In a subprocess, to see that TensorFlow was not imported (in the full environment it is installed).
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"arch": "residual", "ema_momentum": 0.999}))
    code = (
        "import sys\nfrom vae_gen.cli.commands import main\n"
        f"status = main(['train', '--config', {str(recipe)!r}, '--out', {str(tmp_path / 'run')!r}])\n"
        "print(status, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert result.stderr.count("\n") == 1
    assert f"vae-gen train: error: {recipe}: ema_momentum 0.999 was an option that vae-gen no longer has" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_missing_config_is_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"vae-gen train: error: {tmp_path / 'nope.json'}: no such settings file\n"


def test_folder_settings_parse_check_and_refuse_fashion_mnist(tmp_path, capsys):
    settings = TrainSettings(data="images/", image_size=[32, 48], channels=3, test_fraction=0.2)
    assert settings.image_size == (32, 48) and TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    for changes, message in [
        ({"image_size": (32, 32)}, "image_size applies to a folder of images; fashion-mnist is 28x28 grayscale"),
        ({"channels": 3}, "channels applies to a folder of images"),
        ({"data": "dir", "channels": 2}, "channels must be one of 1, 3 (or null: from the data), got 2"),
        ({"data": "dir", "channels": 3.0}, "channels must be one of 1, 3 (or null: from the data), got 3.0"),
        ({"data": "dir", "test_fraction": 1.0}, "test_fraction must be a number > 0 and < 1"),
        ({"data": "dir", "image_size": [0, 4]}, "image_size must be HxW with integers from 1 to 4096"),
        ({"data": ""}, "data must be a non-empty string"),
    ]:
        with pytest.raises(SettingError, match=re.escape(message)):
            TrainSettings(**changes)
    with pytest.raises(SystemExit):
        main(["train", "--data", "dir", "--image-size", "32by32", "--out", str(tmp_path / "run")])
    assert "argument --image-size: must be HxW with integers from 1 to 4096" in capsys.readouterr().err
    assert main(["train", "--image-size", "32x32", "--out", str(tmp_path / "run")]) == 2
    assert "vae-gen train: error: --image-size applies to a folder of images" in capsys.readouterr().err


def test_an_old_runs_record_reads_for_export_whatever_options_it_had():
    # A residual run from before the architecture took the default's layers: it still exports (its Keras files
    # hold what it built), though it could not be trained again as it was.
    old = {"arch": "residual", "latent_dim": 8, "decoder_hidden": [], "encoder_map": 7, "ema_momentum": 0.9,
           "data": {"source": "/usr/share/datasets/fashion-mnist", "train_images": 60000}, "train_seconds": 12.0}  # fmt: skip
    assert TrainSettings.from_record(old) == TrainSettings(arch="residual", latent_dim=8)
    with pytest.raises(SettingError, match=r"decoder_hidden \[\] was an option that vae-gen no longer has"):
        TrainSettings.from_dict({k: v for k, v in old.items() if k in names() or k in RETIRED} | {"data": "fashion-mnist"})


def test_the_default_batch_size_gives_a_small_set_enough_steps_per_epoch():
    from vae_gen.training.settings import default_batch_size

    assert default_batch_size(60_000) == 128  # Fashion-MNIST: 469 steps an epoch, as always
    assert default_batch_size(12_673) == 128 and default_batch_size(12_672) == 64  # 100 steps at 128; 99, so 198 at 64
    assert default_batch_size(1_170) == 16  # the 1,300-icon folder's training part: 74 steps, not 10
    assert default_batch_size(10) == 16  # never below 16
    assert TrainSettings().batch_size is None and TrainSettings.from_dict({"batch_size": None}).batch_size is None
