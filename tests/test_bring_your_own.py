"""Bring your own: Keras VAEs vae-gen did not train, exported as a user would, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae_gen
from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow

#: keras.io's sampling layer, as a user's own file: `--custom-objects` imports it.
SAMPLING_PY = '''
import keras
from keras import layers, ops


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon
'''


def load_sampling(folder: Path):
    from vae_gen.export.parity import load_custom_objects

    (folder / "sampling.py").write_text(SAMPLING_PY)
    return load_custom_objects(folder / "sampling.py")["Sampling"]


def tutorial_vae(sampling, shape=(28, 28), latent=2, activation="sigmoid"):
    """The common tutorials' VAE: a functional encoder with a Sampling layer and three outputs, a Sequential
    decoder ending in Reshape to the images' shape."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    image = keras.Input(shape)
    x = layers.Reshape((*shape[:2], shape[2] if len(shape) == 3 else 1))(image)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent, name="z_mean")(x)
    z_log_var = layers.Dense(latent, name="z_log_var")(x)
    encoder = keras.Model(image, [z_mean, z_log_var, sampling()([z_mean, z_log_var])], name="encoder")
    decoder = keras.Sequential([
        keras.Input((latent,)),
        layers.Dense(16, activation="relu"),
        layers.Dense(int(np.prod(shape)), activation=activation),
        layers.Reshape(shape),
    ], name="decoder")  # fmt: skip
    return encoder, decoder


def train_one_epoch(encoder, decoder, images: np.ndarray) -> None:
    """keras.io's VAE training step, one epoch: what a user does before exporting."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-3)
    for batch in tf.data.Dataset.from_tensor_slices(images).batch(64):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = encoder(batch)
            reconstruction = decoder(z)
            bce = keras.losses.binary_crossentropy(batch[..., None], reconstruction[..., None])
            loss = tf.reduce_mean(tf.reduce_sum(bce, axis=(1, 2))) + tf.reduce_mean(
                tf.reduce_sum(-0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var)), axis=1)
            )
        weights = encoder.trainable_weights + decoder.trainable_weights
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))


@pytest.fixture(scope="module")
def tutorial_files(tmp_path_factory):
    from vae_gen.train.data import load_fashion_mnist

    folder = tmp_path_factory.mktemp("tutorial")
    encoder, decoder = tutorial_vae(load_sampling(folder))
    train_one_epoch(encoder, decoder, load_fashion_mnist().train_images[:1024].astype(np.float32) / 255)
    encoder.save(folder / "encoder.keras")
    decoder.save(folder / "decoder.keras")
    return folder


def test_a_tutorial_vae_exports_with_one_command_passes_parity_samples_and_reconstructs(tutorial_files, tmp_path, capsys):
    model = tmp_path / "tutorial"
    argv = ["export", "--decoder", str(tutorial_files / "decoder.keras"), "--encoder", str(tutorial_files / "encoder.keras"),
            "--custom-objects", str(tutorial_files / "sampling.py"), "--out", str(model)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    card = vae_gen.load(model).card
    assert card.format_version == 3 and card.image_shape == (28, 28, 1) and card.value_range == (0.0, 1.0)
    assert card.conditioning is None and card.prior is None
    assert card.parity["max_abs_diff"] <= 1e-5 and card.test_metrics == {}
    assert card.origin == {"kind": "keras", "decoder": "decoder.keras", "encoder": "encoder.keras", "encoder_outputs": [0, 1]}
    assert card.decoder_flops > 0  # counted inside the Sequential
    assert main(["sample", "--model", str(model), "-n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, 28, 28)
    picture = tmp_path / "shirt.png"
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(picture)
    assert main(["reconstruct", str(picture), "--model", str(model), "--out", str(tmp_path / "r.png")]) == 0
    # The encoder's Sampling branch never reaches the graph.
    import onnx

    from vae_gen.export.convert import RANDOM_OPS, graph_op_types

    assert not graph_op_types(onnx.load(str(model / "encoder.onnx"))) & RANDOM_OPS
    assert main(["parity", str(model), "--custom-objects", str(tutorial_files / "sampling.py")]) == 0


def test_a_missing_custom_class_is_named_with_the_way_to_pass_it(tutorial_files, tmp_path, capsys):
    argv = ["export", "--decoder", str(tutorial_files / "decoder.keras"), "--encoder", str(tutorial_files / "encoder.keras"),
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "encoder.keras: uses the custom class 'Sampling'" in err and "--custom-objects FILE.py" in err
    assert not (tmp_path / "m").exists()


def test_an_rgb_tanh_vae_exports_and_its_arrays_pngs_and_keras_outputs_agree(tmp_path):
    import keras

    from vae_gen.export.exporter import export_keras

    sampling = load_sampling(tmp_path)
    encoder, decoder = tutorial_vae(sampling, shape=(32, 32, 3), latent=4, activation="tanh")
    card = export_keras(decoder, tmp_path / "rgb", encoder=encoder, name="rgb")  # in-memory models, as in a notebook
    assert card.image_shape == (32, 32, 3) and card.value_range == (-1.0, 1.0) and card.parity["max_abs_diff"] <= 1e-5
    assert main(["sample", "--model", str(tmp_path / "rgb"), "-n", "20", "--seed", "3", "--out", str(tmp_path / "x.npy")]) == 0
    assert main(["sample", "--model", str(tmp_path / "rgb"), "-n", "20", "--seed", "3", "--out", str(tmp_path / "png")]) == 0
    array = np.load(tmp_path / "x.npy")
    assert array.shape == (20, 32, 32, 3) and array.dtype == np.uint8
    for i in (0, 19):
        with Image.open(tmp_path / "png" / f"{i:06d}.png") as picture:
            assert picture.mode == "RGB" and np.array_equal(np.asarray(picture), array[i])
    z = vae_gen.load(tmp_path / "rgb").latents(20, seed=3)
    from_keras = np.clip(np.rint((keras.ops.convert_to_numpy(decoder(z)) + 1) * 127.5), 0, 255)
    assert np.abs(from_keras - array).max() <= 1  # float32 rounding may move a pixel across a .5 boundary
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.full((50, 70, 3), (200, 30, 30), np.uint8)).save(photo)
    assert main(["reconstruct", str(photo), "--model", str(tmp_path / "rgb"), "--out", str(tmp_path / "r.png")]) == 0


def test_a_decoder_alone_exports_from_a_flat_output_and_is_scored_only_with_data(tmp_path, capsys):
    import keras
    from keras import layers

    decoder = keras.Sequential([keras.Input((3,)), layers.Dense(20 * 12, activation="sigmoid")])
    decoder.save(tmp_path / "flat.keras")
    base = ["export", "--decoder", str(tmp_path / "flat.keras")]
    assert main([*base, "--out", str(tmp_path / "m")]) == 2
    assert "outputs flat vectors of 240 values; say which images with --image-shape H,W,C" in capsys.readouterr().err
    assert main([*base, "--image-shape", "20,12,1", "--out", str(tmp_path / "m")]) == 0
    generator = vae_gen.load(tmp_path / "m")
    assert generator.generate(2).shape == (2, 20, 12) and not generator.has_encoder
    assert main(["evaluate", str(tmp_path / "m")]) == 2
    assert "has no encoder" in capsys.readouterr().err


def test_export_scores_with_data_only(tutorial_files, tmp_path):
    from vae_gen.export.exporter import export_files

    card = export_files(
        tutorial_files / "decoder.keras", tmp_path / "scored", encoder=tutorial_files / "encoder.keras",
        custom_objects=tutorial_files / "sampling.py", data="fashion-mnist",
    )  # fmt: skip
    assert card.test_metrics["data"] == "fashion-mnist" and card.test_metrics["test_images"] == 10_000
    assert 189 < card.test_metrics["neg_elbo"] < 600


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    """Models that do not fit the runtime's contract, each saved as a user's file."""
    import keras
    from keras import layers

    folder = tmp_path_factory.mktemp("odd")
    a, b, c = keras.Input((2,)), keras.Input((2,)), keras.Input((2,))
    three_inputs = keras.Model([a, b, c], layers.Dense(4, activation="sigmoid")(layers.Concatenate()([a, b, c])))
    models = {
        "three-inputs": three_inputs,
        "linear": keras.Sequential([keras.Input((2,)), layers.Dense(16), layers.Reshape((4, 4))]),
        "channels-2": keras.Sequential([keras.Input((2,)), layers.Dense(32, activation="sigmoid"), layers.Reshape((4, 4, 2))]),
        "sigmoid": keras.Sequential([keras.Input((2,)), layers.Dense(16, activation="sigmoid"), layers.Reshape((4, 4))]),
        "volume": keras.Sequential([keras.Input((2,)), layers.Dense(16, activation="sigmoid"), layers.Reshape((2, 2, 2, 2))]),
    }
    for name, model in models.items():
        model.save(folder / f"{name}.keras")
    return folder


@pytest.mark.parametrize(
    ("decoder", "options", "message"),
    [
        ("three-inputs", [], "has 3 inputs; expected z [batch, latent], or z and a label [batch, classes]"),
        ("linear", [], "output activation (linear) does not say its value range; if it outputs logits (the loss "
                       "applies the sigmoid), pass --decoder-output logits; else --value-range 0,1 or -1,1"),
        ("sigmoid", ["--decoder-output", "logits"], "ends in sigmoid: its outputs are images already, not logits; "
                                                    "drop --decoder-output logits"),
        ("channels-2", [], "makes images with 2 channels; vae-gen takes 1 (grayscale) or 3 (RGB)"),
        ("sigmoid", ["--value-range", "-1,1"], "ends in sigmoid, whose values span [0, 1], not --value-range [-1, 1]"),
        ("volume", [], "output has shape [batch, 2, 2, 2, 2]; expected [batch, H, W], [batch, H, W, C]"),
    ],
)
def test_a_model_that_does_not_fit_is_refused_in_one_line_naming_it(odd_models, decoder, options, message, tmp_path, capsys):
    path = odd_models / f"{decoder}.keras"
    assert main(["export", "--decoder", str(path), *options, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err, err
    assert not (tmp_path / "m").exists()


def test_a_linear_decoder_exports_with_a_value_range_and_its_values_are_checked(odd_models, tmp_path, capsys):
    # Linear outputs leave [0, 1] on far-out latents: the range the user claimed is checked, not trusted.
    argv = ["export", "--decoder", str(odd_models / "linear.keras"), "--value-range", "0,1", "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    assert "outputs span" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_export_arguments_say_what_goes_with_what(odd_models, tmp_path, capsys):
    assert main(["export", str(odd_models / "sigmoid.keras"), "--out", str(tmp_path / "m")]) == 2
    assert "a file, not a run folder; to export your own Keras files, use --decoder" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "m")]) == 2
    assert "give a run folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--value-range", "0,1", "--out", str(tmp_path / "m")]) == 2
    assert "--value-range: only for your own Keras files (--decoder)" in capsys.readouterr().err
    assert main(["export", "--decoder", str(tmp_path / "none.keras"), "--out", str(tmp_path / "m")]) == 2
    assert "none.keras: no such file" in capsys.readouterr().err
    assert main(["export", "--decoder", str(odd_models / "sigmoid.keras"), "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "model.json").read_text())["encoder"] is None


def test_the_sampled_output_is_found_by_structure_whatever_the_order_and_names(tmp_path):
    import keras
    from keras import layers

    from vae_gen.export.keras_vae import inspect_vae

    sampling = load_sampling(tmp_path)
    image = keras.Input((28, 28))
    x = layers.Dense(8, activation="relu")(layers.Flatten()(image))
    mean, log_var = layers.Dense(2)(x), layers.Dense(2)(x)  # names that say nothing
    encoder = keras.Model(image, [sampling()([mean, log_var]), log_var, mean])
    _, decoder = tutorial_vae(sampling)
    assert inspect_vae(decoder, encoder).encoder_outputs == (2, 1)


def test_a_log_sigma_output_is_refused_not_taken_for_a_log_variance(tmp_path, capsys):
    import keras
    from keras import layers

    image = keras.Input((28, 28))
    x = layers.Flatten()(image)
    encoder = keras.Model(image, [layers.Dense(2, name="z_mean")(x), layers.Dense(2, name="z_log_sigma")(x)])
    encoder.save(tmp_path / "e.keras")
    _, decoder = tutorial_vae(load_sampling(tmp_path))
    decoder.save(tmp_path / "d.keras")
    argv = ["export", "--decoder", str(tmp_path / "d.keras"), "--encoder", str(tmp_path / "e.keras"),
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    assert "output 'z_log_sigma' looks like a log standard deviation; vae-gen needs z_log_var" in capsys.readouterr().err
