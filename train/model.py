"""The VAE, read top to bottom: sampling layer, encoder, decoder, and the
model that joins them with its loss.

The encoder outputs only (z_mean, z_log_var) and the decoder is
deterministic; the one random op, the Sampling layer, lives in the VAE
wrapper, so neither exported graph ever contains randomness.

Every architecture also builds class-conditional (`classes` > 0): a second
input `label`, float32 [batch, classes] (a one-hot row, or class weights
summing to 1 for a blend), joins the encoder's features before its hidden
Dense layer and z before the decoder's first Dense layer. The prior stays
N(0, I): the label tells the decoder the class, so z is free to hold the
rest (pose, shape, texture).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

#: Fashion-MNIST's shape, the default; every architecture builds for any (H, W) and C in {1, 3}.
IMAGE_SHAPE = (28, 28, 1)


def decoder_map(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """The side lengths of the conv decoders' first map: two stride-2 upsamplings reach (H, W) or just past it."""
    return math.ceil(image_shape[0] / 4), math.ceil(image_shape[1] / 4)


def crop_to(x, image_shape: tuple[int, int, int]):
    """Crop an upsampled map to (H, W) when the two upsamplings overshot it (H or W not a multiple of 4)."""
    extra_h, extra_w = int(x.shape[1]) - image_shape[0], int(x.shape[2]) - image_shape[1]
    if extra_h or extra_w:
        x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)))(x)
    return x


class Sampling(layers.Layer):
    """z = mu + exp(0.5 * log_var) * eps, eps ~ N(0, I): the reparameterization trick."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def label_input(classes: int):
    """The conditional networks' second input, or None for an unconditional model."""
    return keras.Input(shape=(classes,), name="label") if classes else None


def with_label(x, label):
    """x with the label's columns appended (conditional), or x itself."""
    return x if label is None else layers.Concatenate()([x, label])


def network(inputs, label, outputs, name: str) -> keras.Model:
    """A keras.Model of `inputs` (and the label, second, when conditional)."""
    return keras.Model(inputs if label is None else [inputs, label], outputs, name=name)


def posterior_heads(features, latent_dim: int):
    """The encoder's two linear heads: z_mean and z_log_var of q(z|x)."""
    # float32 even under a mixed-precision policy: the KL and the sampling
    # need the posterior's full precision.
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(features)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(features)
    return z_mean, z_log_var


def build_dense_encoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """The seeds' encoder: Flatten -> Dense(128, relu) -> Dense(latent) twice."""
    image, label = keras.Input(shape=image_shape, name="image"), label_input(classes)
    x = with_label(layers.Flatten()(image), label)
    x = layers.Dense(128, activation="relu")(x)
    return network(image, label, list(posterior_heads(x, latent_dim)), "encoder")


def build_dense_decoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """The seeds' decoder: Dense(128, relu) -> Dense(H * W * C, sigmoid) -> Reshape(H, W, C)."""
    z, label = keras.Input(shape=(latent_dim,), name="z"), label_input(classes)
    x = layers.Dense(128, activation="relu")(with_label(z, label))
    x = layers.Dense(math.prod(image_shape), activation="sigmoid", dtype="float32")(x)
    image = layers.Reshape(image_shape, name="image")(x)
    return network(z, label, image, "decoder")


def build_conv_encoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """Two stride-2 convolutions (28 -> 14 -> 7), then Dense(256) -> z_mean, z_log_var."""
    image, label = keras.Input(shape=image_shape, name="image"), label_input(classes)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = with_label(layers.Flatten()(x), label)
    x = layers.Dense(256, activation="relu")(x)
    return network(image, label, list(posterior_heads(x, latent_dim)), "encoder")


def build_conv_decoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """keras.io's conv decoder with a 3x3 convolution after each upsampling.

    The extra stride-1 convolutions let each upsampled pixel see its
    neighbours, which sharpens edges and textures for few parameters
    (the decoder stays far under 2 MB).
    """
    z, label = keras.Input(shape=(latent_dim,), name="z"), label_input(classes)
    map_h, map_w = decoder_map(image_shape)
    x = layers.Dense(map_h * map_w * 64, activation="relu")(with_label(z, label))
    x = layers.Reshape((map_h, map_w, 64))(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = crop_to(layers.Conv2D(32, 3, padding="same", activation="relu")(x), image_shape)
    image = layers.Conv2D(image_shape[2], 3, padding="same", activation="sigmoid", name="image", dtype="float32")(x)
    return network(z, label, image, "decoder")


def residual_block(x, channels: int):
    """relu(x + conv(relu(conv(x)))): two 3x3 convolutions that learn a correction to x.

    The skip path keeps gradients flowing through the deeper stack, so the
    extra depth trains as fast as the shallow model did.
    """
    y = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(channels, 3, padding="same")(y)
    return layers.Activation("relu")(layers.Add()([x, y]))


def build_residual_encoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """Deeper and wider than the conv encoder: a full-resolution stem, 64 and 128 channels down to a 4x4 map,
    Dense(512).

    A stronger encoder narrows the gap between the ELBO and the likelihood
    (a better q(z|x)) and costs nothing at generation time. The third
    stride-2 convolution (7x7 -> 4x4) shrinks the Dense layer's input from
    6,272 features to 2,048, and the encoder from 3.4 M parameters to 1.4 M,
    which the optimizer updates every step: 40 epochs of batch 32 then fit
    the hour on 2 cores (docs/experiments.md). Other image sizes end in a
    map of about an eighth of their sides.
    """
    image, label = keras.Input(shape=image_shape, name="image"), label_input(classes)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(x)
    x = with_label(layers.Flatten()(x), label)
    x = layers.Dense(512, activation="relu")(x)
    return network(image, label, list(posterior_heads(x, latent_dim)), "encoder")


def build_residual_decoder(latent_dim: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE, classes: int = 0) -> keras.Model:
    """Dense(64) -> Dense -> 7x7x64 -> conv 128 -> up to 14x14, a residual block of 64 -> up to 28x28, one of 32.

    Twice the conv decoder's FLOPs, spent where they are cheap per pixel
    (7x7 and 14x14) and on depth at full resolution; about 1.9 MB as ONNX.

    The hidden Dense(64) after z lets the 7x7 map, the layout of the
    garment that the later local convolutions only refine, combine latent
    dimensions non-linearly; without it every feature of the map is a linear
    function of z (then relu). It costs 0.2 MFLOP and 0.4 MB, and bought
    0.3 nats of test -ELBO (docs/experiments.md).
    """
    z, label = keras.Input(shape=(latent_dim,), name="z"), label_input(classes)
    map_h, map_w = decoder_map(image_shape)
    x = layers.Dense(64, activation="relu")(with_label(z, label))
    x = layers.Dense(map_h * map_w * 64, activation="relu")(x)
    x = layers.Reshape((map_h, map_w, 64))(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = residual_block(x, 64)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = crop_to(residual_block(x, 32), image_shape)
    image = layers.Conv2D(image_shape[2], 3, padding="same", activation="sigmoid", name="image", dtype="float32")(x)
    return network(z, label, image, "decoder")


#: By name (vae_gen.training.settings.ARCHITECTURES lists the same names, for the CLI): (encoder, decoder) builders.
ARCHITECTURES = {
    "dense": (build_dense_encoder, build_dense_decoder),
    "conv": (build_conv_encoder, build_conv_decoder),
    "residual": (build_residual_encoder, build_residual_decoder),
}


def vae_losses(images, reconstruction, z_mean, z_log_var):
    """(-ELBO, reconstruction, KL), each in nats per image, averaged over the batch.

    The ELBO of one image is log p(x|z) - KL(q(z|x) || p(z)): the Bernoulli
    log-likelihood *summed* over its 784 pixels, minus the KL *summed* over
    the latent dimensions. Averaging the BCE over pixels instead (as the seed
    text did) shrinks the reconstruction term 784-fold, and summing the KL
    over the batch grows the KL term with the batch size: together they
    weigh KL hundreds to thousands of times too heavily, the optimum moves
    with the batch size, and the samples collapse to blurry averages.
    """
    bce = ops.binary_crossentropy(images, reconstruction)
    reconstruction_loss = ops.mean(ops.sum(bce, axis=(1, 2, 3)))
    kl = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    kl_loss = ops.mean(ops.sum(kl, axis=1))
    return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss


class VAE(keras.Model):
    """Encoder + Sampling + decoder, trained on the negative ELBO.

    Batches are images, or (images, one-hot labels) for a conditional VAE,
    whose encoder and decoder both take the label as their second input; its
    -ELBO is then that of x given its label.

    Metrics are `keras.metrics.Mean` trackers, so what Keras logs per epoch
    is the mean over all batches (all test images, for validation), not the
    value of the last batch.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.conditional = len(decoder.inputs) == 2
        self.sampling = Sampling(seed=seed)
        # KL warm-up scales the KL term of the *training* objective only;
        # every reported -ELBO uses the full KL.
        self.kl_weight = keras.Variable(1.0, trainable=False, name="kl_weight")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.neg_elbo_tracker, self.reconstruction_tracker, self.kl_tracker]

    def split(self, data):
        """(images, labels) of a batch; labels None for an unconditional VAE."""
        return data if self.conditional else (data, None)

    def reconstruct(self, images, labels, training):
        """(reconstruction, z_mean, z_log_var) of one posterior sample per image."""
        given = (lambda x: x) if labels is None else (lambda x: [x, labels])
        z_mean, z_log_var = self.encoder(given(images), training=training)
        reconstruction = self.decoder(given(self.sampling([z_mean, z_log_var])), training=training)
        return reconstruction, z_mean, z_log_var

    def call(self, data, training=False):
        images, labels = self.split(data)
        return self.reconstruct(images, labels, training)[0]

    def elbo_terms(self, data, training):
        images, labels = self.split(data)
        return vae_losses(images, *self.reconstruct(images, labels, training))

    def update_metrics(self, neg_elbo, reconstruction, kl, data):
        # Weight by batch size so a short last batch counts for what it holds.
        batch_size = ops.cast(ops.shape(self.split(data)[0])[0], "float32")
        self.neg_elbo_tracker.update_state(neg_elbo, sample_weight=batch_size)
        self.reconstruction_tracker.update_state(reconstruction, sample_weight=batch_size)
        self.kl_tracker.update_state(kl, sample_weight=batch_size)
        return {m.name: m.result() for m in (self.neg_elbo_tracker, self.reconstruction_tracker, self.kl_tracker)}

    def optimized_weights(self) -> list:
        """The weights `self.optimizer` updates, in the order its moments follow."""
        return self.trainable_weights

    def state_variables(self) -> list:
        """Every variable the next training step reads, in an order fixed by how the model was built: the
        weights, the random-number generators' states, the KL weight, the optimizer's step count and moments.
        What a checkpoint holds (train/checkpoint.py)."""
        if not self.optimizer.built:  # built by its first step otherwise; a resumed run restores into it first
            self.optimizer.build(self.optimized_weights())
        return [*self.variables, *self.optimizer.variables]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            neg_elbo, reconstruction, kl = self.elbo_terms(data, training=True)
            objective = reconstruction + self.kl_weight * kl
        weights = self.optimized_weights()
        gradients = tape.gradient(objective, weights)
        self.optimizer.apply_gradients(zip(gradients, weights, strict=True))
        return self.update_metrics(neg_elbo, reconstruction, kl, data)

    def test_step(self, data):
        neg_elbo, reconstruction, kl = self.elbo_terms(data, training=False)
        return self.update_metrics(neg_elbo, reconstruction, kl, data)


def build_networks(
    arch: str,
    latent_dim: int,
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    precision: str = "float32",
    classes: int = 0,
) -> tuple[keras.Model, keras.Model]:
    """(encoder, decoder) of `arch` for images of `image_shape`, their layers computing in `precision`
    ("float32" or "mixed_bfloat16": bfloat16 arithmetic with float32 weights; the posterior heads and the
    output layer stay float32); conditioned on `classes` classes when it is not 0."""
    build_encoder, build_decoder = ARCHITECTURES[arch]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_encoder(latent_dim, image_shape, classes), build_decoder(latent_dim, image_shape, classes)
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` rebuilt with every layer in float32, holding its (float32) weights: what gets saved and exported."""
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def build_vae(
    arch: str,
    latent_dim: int,
    seed: int,
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    precision: str = "float32",
    classes: int = 0,
) -> VAE:
    encoder, decoder = build_networks(arch, latent_dim, image_shape, precision, classes)
    return VAE(encoder, decoder, seed=seed, name=f"vae_{arch}")
