"""A gallery of foreign Keras VAEs, written from their published structure, each trained a few steps the way its
source trains it and exported in one command behind the parity gate.

1. keras.io's VAE tutorial as written there: a subclassed `keras.Model` with its own `train_step`, fit with
   `model.fit`; its `encoder` and `decoder` attributes are what gets exported (a custom Sampling layer).
2. TensorFlow's convolutional VAE tutorial ("CVAE"): Sequential networks, one fused Dense(2 * latent)
   encoder output, a Conv2DTranspose decoder that outputs logits, trained with
   `sigmoid_cross_entropy_with_logits`.
3. A conditional VAE in that tutorial's style: the label tiled into extra encoder channels, the decoder
   taking concat(z, one-hot), logits out.
4. The Keras blog's dense VAE on flat vectors, its sampling a `Lambda(sampling)` layer making a third output z,
   ported to Keras 3 with one Dense(2 * latent) sliced into z_mean and z_log_var by Python lambdas: their code
   needs --trust-code, recorded in the card and asked for again by `vae-gen parity`.
5. An encoder that outputs (mean, log_var) as a list of two, the sampling in the training loop, and a
   Sequential Conv2DTranspose decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vae_gen
from vae_gen.cli.commands import main

pytestmark = pytest.mark.tensorflow

LATENT = 4
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
TRAIN_IMAGES = 1024


@pytest.fixture(scope="module")
def fashion():
    from vae_gen.train.data import load_fashion_mnist

    data = load_fashion_mnist()
    images = data.train_images[:TRAIN_IMAGES, ..., None].astype(np.float32) / 255.0
    return images, data.train_labels[:TRAIN_IMAGES].astype(np.int64)


def kl(mean, log_var):
    import tensorflow as tf

    return tf.reduce_mean(-0.5 * tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1))


def steps(images, *others, batch: int = 64):
    """The dataset's batches, as the tutorials iterate them."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, *others) if others else images).batch(batch)


def export(tmp_path: Path, *options: str) -> vae_gen.Generator:
    """`vae-gen export` in one command; the folder must load, sample and reconstruct."""
    out = tmp_path / "model"
    assert main(["export", *options, "--out", str(out)]) == 0
    generator = vae_gen.load(out)
    assert generator.card.parity["max_abs_diff"] <= 1e-5
    label = "all" if generator.classes else None
    images = generator.generate(8, seed=0, label=label)
    assert images.shape == (8, 28, 28) and images.dtype == np.uint8 and images.std() > 0
    z_mean, z_log_var = generator.encode(images[..., None].astype(np.float32) / 255.0,
                                         label=None if label is None else list(range(8)))  # fmt: skip
    assert z_mean.shape == z_log_var.shape == (8, LATENT) and np.isfinite(z_log_var).all()
    return generator


# 1. keras.io: "Variational AutoEncoder" (examples/generative/vae.py)

KERAS_IO_PY = '''
import keras
import tensorflow as tf
from keras import layers, ops


@keras.saving.register_keras_serializable(package="gallery")
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            total_loss = reconstruction_loss + ops.mean(ops.sum(kl_loss, axis=1))
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        return {"loss": self.total_loss_tracker.result()}
'''


def test_keras_io_subclassed_vae_with_train_step(fashion, tmp_path):
    import keras
    from keras import layers

    from vae_gen.export.parity import load_custom_objects

    (tmp_path / "keras_io.py").write_text(KERAS_IO_PY)
    objects = load_custom_objects(tmp_path / "keras_io.py")
    keras.utils.set_random_seed(0)
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = objects["Sampling"]()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = keras.Input(shape=(LATENT,))
    x = layers.Reshape((7, 7, 16))(layers.Dense(7 * 7 * 16, activation="relu")(latent_inputs))
    x = layers.Conv2DTranspose(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")
    vae = objects["VAE"](encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam())
    vae.fit(fashion[0], epochs=1, batch_size=128, verbose=0)
    vae.encoder.save(tmp_path / "encoder.keras")
    vae.decoder.save(tmp_path / "decoder.keras")
    generator = export(tmp_path, "--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras"),
                       "--custom-objects", str(tmp_path / "keras_io.py"))  # fmt: skip
    assert generator.card.origin["encoder_outputs"] == [0, 1]


# 2. tensorflow.org: "Convolutional Variational Autoencoder" (tutorials/generative/cvae)


def tf_cvae(image_channels: int = 1, decoder_inputs: int = LATENT):
    """The tutorial's CVAE networks (its filters scaled down): fused encoder output, logits decoder."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([
        keras.Input((28, 28, image_channels)),
        layers.Conv2D(8, 3, strides=(2, 2), activation="relu"),
        layers.Conv2D(16, 3, strides=(2, 2), activation="relu"),
        layers.Flatten(),
        layers.Dense(LATENT + LATENT),  # no activation: mean and log-variance, side by side
    ])  # fmt: skip
    decoder = keras.Sequential([
        keras.Input((decoder_inputs,)),
        layers.Dense(7 * 7 * 16, activation="relu"),
        layers.Reshape((7, 7, 16)),
        layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(1, 3, strides=1, padding="same"),  # no activation: logits
    ])  # fmt: skip
    return encoder, decoder


def train_tf_cvae(encoder, decoder, images, labels=None, classes: int = 0):
    """The tutorial's step: split the fused output, reparameterize, sigmoid cross-entropy on the logits."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-3)
    for batch in steps(images, *(() if labels is None else (labels,))):
        x, y = (batch, None) if labels is None else batch
        with tf.GradientTape() as tape:
            given = x if y is None else tf.concat([x, tf.tile(tf.one_hot(y, classes)[:, None, None, :], [1, 28, 28, 1])], -1)
            mean, logvar = tf.split(encoder(given), num_or_size_splits=2, axis=1)
            z = mean + tf.exp(logvar * 0.5) * tf.random.normal(tf.shape(mean))
            x_logit = decoder(z if y is None else tf.concat([z, tf.one_hot(y, classes)], -1))
            cross = tf.reduce_mean(tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x), [1, 2, 3]))
            loss = cross + kl(mean, logvar)
        weights = encoder.trainable_variables + decoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))


@pytest.fixture(scope="module")
def cvae_files(fashion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cvae")
    encoder, decoder = tf_cvae()
    for _ in range(6):  # enough for the halves to differ: the mean half then reconstructs with half the error
        train_tf_cvae(encoder, decoder, fashion[0])
    encoder.save(folder / "encoder.keras")
    decoder.save(folder / "decoder.keras")
    return folder


def test_tf_cvae_tutorial_fused_output_and_logits(cvae_files, tmp_path):
    files = ["--decoder", str(cvae_files / "decoder.keras"), "--encoder", str(cvae_files / "encoder.keras")]
    generator = export(tmp_path, *files, "--decoder-output", "logits", "--data", "fashion-mnist")
    card = generator.card
    assert card.value_range == (0.0, 1.0) and card.test_metrics["neg_elbo"] > 0  # scored after the sigmoid
    assert card.origin["decoder_output"] == "logits" and card.origin["encoder_outputs"] == "fused"
    assert main(["parity", str(tmp_path / "model")]) == 0  # re-read the same way from the card


def test_a_fused_output_in_the_wrong_order_is_refused_on_the_data(cvae_files, tmp_path, capsys):
    files = ["--decoder", str(cvae_files / "decoder.keras"), "--encoder", str(cvae_files / "encoder.keras")]
    argv = ["export", *files, "--decoder-output", "logits", "--encoder-outputs", "fused-log-var-first",
            "--data", "fashion-mnist", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reads the other way round" in err and "pass --encoder-outputs fused" in err, err
    assert not (tmp_path / "m").exists()


def test_a_logits_decoder_without_the_flag_names_it(cvae_files, tmp_path, capsys):
    argv = ["export", "--decoder", str(cvae_files / "decoder.keras"), "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    assert "if it outputs logits (the loss applies the sigmoid), pass --decoder-output logits" in capsys.readouterr().err
    positions = ["--encoder", str(cvae_files / "encoder.keras"), "--encoder-outputs", "0,1", "--decoder-output", "logits"]
    assert main([*argv, *positions]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --encoder-outputs fused (z_mean first) or fused-log-var-first" in err, err


# 3. A conditional VAE in the CVAE tutorial's style: label tiled into the encoder's channels, concat(z, y) in.


def test_conditional_vae_with_tiled_label_channels_and_concatenated_decoder_input(fashion, tmp_path, capsys):
    encoder, decoder = tf_cvae(image_channels=1 + len(CLASSES), decoder_inputs=LATENT + len(CLASSES))
    for _ in range(3):
        train_tf_cvae(encoder, decoder, *fashion, classes=len(CLASSES))
    encoder.save(tmp_path / "encoder.keras")
    decoder.save(tmp_path / "decoder.keras")
    files = ["--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras")]
    # Nothing in one input of 14 says z and a label; the encoder's 10 extra channels do, and the refusal says so.
    assert main(["export", *files, "--decoder-output", "logits", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "name the classes with --classes (as many as 10)" in err, err
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    generator = export(tmp_path, *files, "--classes", str(tmp_path / "classes.txt"), "--decoder-output", "logits")
    card = generator.card
    assert generator.classes == CLASSES and card.latent_dim == LATENT
    assert card.origin["decoder_label"] == "concatenated" and card.origin["encoder_label"] == "tiled"
    # The runtime feeds the label as it always does: the graphs tile and concatenate it themselves.
    assert card.decoder.inputs == ("z", "label") and card.encoder is not None and card.encoder.inputs == ("image", "label")
    sneakers = generator.generate(4, seed=1, label="Sneaker")
    boots = generator.generate(4, seed=1, label="Ankle boot")
    assert not np.array_equal(sneakers, boots)
    assert main(["parity", str(tmp_path / "model")]) == 0


# 4. The Keras blog's VAE ("Building Autoencoders in Keras", 2016): the sampling in a Lambda layer.

BLOG_PY = """
import keras


def sampling(args):
    z_mean, z_log_var = args
    epsilon = keras.random.normal(shape=keras.ops.shape(z_mean))
    return z_mean + keras.ops.exp(z_log_var / 2) * epsilon


def lambda_reading_a_global():
    # A port's shortcut: a lambda calling `keras`, which the .keras file will not hold.
    return keras.layers.Lambda(lambda t: keras.ops.exp(t), output_shape=(4,), name="scale")
"""


def test_keras_blog_style_vae_with_lambda_layers_needs_trust_code(fashion, tmp_path, capsys):
    """The blog's `Lambda(sampling)` makes the third output z; Keras 3 saves a named function by its name (found
    again with --custom-objects). The port slices one Dense(2 * latent) into z_mean and z_log_var with Python
    lambdas, which Keras saves as code: those need --trust-code."""
    import keras
    import tensorflow as tf
    from keras import layers

    from vae_gen.export.convert import ExportError
    from vae_gen.export.exporter import export_keras
    from vae_gen.export.parity import load_custom_objects

    (tmp_path / "blog.py").write_text(BLOG_PY)
    sampling = load_custom_objects(tmp_path / "blog.py")["sampling"]
    keras.utils.set_random_seed(0)
    x = keras.Input((784,))
    h = layers.Dense(2 * LATENT)(layers.Dense(64, activation="relu")(x))
    # Literal bounds: a lambda may use only its argument (a global such as LATENT is not saved with it).
    z_mean = layers.Lambda(lambda t: t[:, :4], output_shape=(LATENT,), name="z_mean")(h)
    z_log_var = layers.Lambda(lambda t: t[:, 4:], output_shape=(LATENT,), name="z_log_var")(h)
    z = layers.Lambda(sampling, output_shape=(LATENT,), name="z")([z_mean, z_log_var])
    encoder = keras.Model(x, [z_mean, z_log_var, z])
    decoder = keras.Sequential([keras.Input((LATENT,)), layers.Dense(64, activation="relu"),
                                layers.Dense(784, activation="sigmoid")])  # fmt: skip
    optimizer = keras.optimizers.Adam(1e-3)
    for batch in steps(fashion[0].reshape(-1, 784)):
        with tf.GradientTape() as tape:
            mean, log_var, sample = encoder(batch)  # the blog samples inside the encoder
            loss = tf.reduce_mean(784 * keras.losses.binary_crossentropy(batch, decoder(sample))) + kl(mean, log_var)
        weights = encoder.trainable_variables + decoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
    encoder.save(tmp_path / "encoder.keras")
    decoder.save(tmp_path / "decoder.keras")

    files = ["--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras"),
             "--image-shape", "28,28,1", "--custom-objects", str(tmp_path / "blog.py")]  # fmt: skip
    assert main(["export", *files, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds Python code (a Lambda layer)" in err and "pass --trust-code" in err, err

    generator = export(tmp_path, *files, "--trust-code")
    assert generator.card.origin["trust_code"] is True
    assert generator.card.origin["encoder_outputs"] == [0, 1]  # z, made from the other two, dropped
    model, objects = str(tmp_path / "model"), ["--custom-objects", str(tmp_path / "blog.py")]
    assert main(["parity", model, *objects]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was exported with --trust-code" in err, err
    assert f"vae-gen parity {model} --trust-code" in err, err
    assert main(["parity", model, *objects, "--trust-code"]) == 0

    # In a notebook: the in-memory models are refused too, unless unsafe=True says the code is trusted.
    with pytest.raises(ExportError, match=r"contains the Lambda layer 'z_(mean|log_var)'.*pass unsafe=True"):
        export_keras(decoder, tmp_path / "notebook", encoder=encoder, image_shape=(28, 28, 1))
    card = export_keras(decoder, tmp_path / "notebook", encoder=encoder, image_shape=(28, 28, 1), unsafe=True)
    assert card.origin["trust_code"] and card.parity["max_abs_diff"] <= 1e-5


def test_a_lambda_reading_names_its_file_does_not_keep_is_refused_in_one_line(tmp_path, capsys):
    import keras
    from keras import layers

    from vae_gen.export.convert import ExportError
    from vae_gen.export.exporter import export_keras
    from vae_gen.export.parity import load_custom_objects

    (tmp_path / "blog.py").write_text(BLOG_PY)
    scale = load_custom_objects(tmp_path / "blog.py")["lambda_reading_a_global"]()
    image = keras.Input((28, 28, 1))
    h = layers.Flatten()(image)
    encoder = keras.Model(image, [scale(layers.Dense(LATENT)(h)), layers.Dense(LATENT)(h)])
    decoder = keras.Sequential([keras.Input((LATENT,)), layers.Dense(784, activation="sigmoid"), layers.Reshape((28, 28))])
    with pytest.raises(ExportError, match=r"Lambda layer 'scale' reads keras from the code around it, which a \.keras "
                                          r"file does not keep"):  # fmt: skip
        export_keras(decoder, tmp_path / "notebook", encoder=encoder, unsafe=True)
    encoder.save(tmp_path / "encoder.keras")
    decoder.save(tmp_path / "decoder.keras")
    argv = ["export", "--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras"),
            "--trust-code", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2  # not the NameError Keras would raise on the first call
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reads keras from the code around it" in err, err
    assert "write it as a named function (passed with --custom-objects FILE.py) or a custom layer" in err, err
    assert not (tmp_path / "m").exists() and not (tmp_path / "notebook").exists()


# 5. An encoder returning [mean, log_var], the sampling in the loop, a Sequential Conv2DTranspose decoder.


def test_two_output_encoder_and_sequential_transpose_decoder(fashion, tmp_path, capsys):
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1))
    h = layers.Flatten()(layers.Conv2D(8, 4, strides=2, padding="same", activation="relu")(image))
    encoder = keras.Model(image, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])  # names that say nothing
    decoder = keras.Sequential([
        keras.Input((LATENT,)),
        layers.Dense(7 * 7 * 8, activation="relu"),
        layers.Reshape((7, 7, 8)),
        layers.Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid"),
    ])  # fmt: skip
    optimizer = keras.optimizers.Adam(1e-3)
    for batch in steps(fashion[0]):
        with tf.GradientTape() as tape:
            mean, log_var = encoder(batch)
            z = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
            bce = keras.losses.binary_crossentropy(batch, decoder(z))
            loss = tf.reduce_mean(tf.reduce_sum(bce, axis=(1, 2))) + kl(mean, log_var)
        weights = encoder.trainable_variables + decoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
    encoder.save(tmp_path / "encoder.keras")
    decoder.save(tmp_path / "decoder.keras")
    files = ["--decoder", str(tmp_path / "decoder.keras"), "--encoder", str(tmp_path / "encoder.keras")]
    generator = export(tmp_path, *files)
    assert json.loads((tmp_path / "model" / "model.json").read_text())["origin"]["encoder_outputs"] == [0, 1]
    assert generator.card.encoder is not None
    assert main(["export", *files, "--encoder-outputs", "fused", "--out", str(tmp_path / "fused")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the positions of z_mean and z_log_var as --encoder-outputs MEAN,LOG_VAR" in err
