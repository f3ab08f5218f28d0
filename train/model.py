"""The VAE, read top to bottom: sampling layer, encoder, decoder, and the
model that joins them with its loss.

The encoder outputs only (z_mean, z_log_var) and the decoder is
deterministic; the one random op, the Sampling layer, lives in the VAE
wrapper, so neither exported graph ever contains randomness.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers, ops

IMAGE_SHAPE = (28, 28, 1)


class Sampling(layers.Layer):
    """z = mu + exp(0.5 * log_var) * eps, eps ~ N(0, I): the reparameterization trick."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def posterior_heads(features, latent_dim: int):
    """The encoder's two linear heads: z_mean and z_log_var of q(z|x)."""
    # float32 even under a mixed-precision policy: the KL and the sampling
    # need the posterior's full precision.
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(features)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(features)
    return z_mean, z_log_var


def build_dense_encoder(latent_dim: int) -> keras.Model:
    """The seeds' encoder: Flatten -> Dense(128, relu) -> Dense(latent) twice."""
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Flatten()(image)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(image, list(posterior_heads(x, latent_dim)), name="encoder")


def build_dense_decoder(latent_dim: int) -> keras.Model:
    """The seeds' decoder: Dense(128, relu) -> Dense(784, sigmoid) -> Reshape(28, 28, 1)."""
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(128, activation="relu")(z)
    x = layers.Dense(28 * 28, activation="sigmoid", dtype="float32")(x)
    image = layers.Reshape(IMAGE_SHAPE, name="image")(x)
    return keras.Model(z, image, name="decoder")


def build_conv_encoder(latent_dim: int) -> keras.Model:
    """Two stride-2 convolutions (28 -> 14 -> 7), then Dense(256) -> z_mean, z_log_var."""
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(image, list(posterior_heads(x, latent_dim)), name="encoder")


def build_conv_decoder(latent_dim: int) -> keras.Model:
    """keras.io's conv decoder with a 3x3 convolution after each upsampling.

    The extra stride-1 convolutions let each upsampled pixel see its
    neighbours, which sharpens edges and textures for few parameters
    (the decoder stays far under 2 MB).
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(7 * 7 * 64, activation="relu")(z)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    image = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="image", dtype="float32")(x)
    return keras.Model(z, image, name="decoder")


def residual_block(x, channels: int):
    """relu(x + conv(relu(conv(x)))): two 3x3 convolutions that learn a correction to x.

    The skip path keeps gradients flowing through the deeper stack, so the
    extra depth trains as fast as the shallow model did.
    """
    y = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(channels, 3, padding="same")(y)
    return layers.Activation("relu")(layers.Add()([x, y]))


def build_residual_encoder(latent_dim: int, final_map: int = 7) -> keras.Model:
    """Deeper and wider than the conv encoder: a full-resolution stem, 64 and 128 channels, Dense(512).

    A stronger encoder narrows the gap between the ELBO and the likelihood
    (a better q(z|x)) and costs nothing at generation time.

    `final_map` is the side of the last feature map, which the Dense layer
    reads: 7 (7x7x128, 6,272 features), or 4 (one more stride-2
    convolution, 4x4x128, 2,048 features).
    """
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(x)
    if final_map == 4:
        # The Dense layer reading the 7x7 map holds 3.2 M of the encoder's 3.4 M parameters, and the
        # optimizer updates every one of them each step; reading a 4x4 map it holds 1.0 M of 1.4 M
        # (`python benchmarks/training_speed.py --recipe` times both).
        x = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    return keras.Model(image, list(posterior_heads(x, latent_dim)), name="encoder")


def build_residual_decoder(latent_dim: int, blocks: int = 1, hidden: Sequence[int] = ()) -> keras.Model:
    """[Dense(h) for h in hidden ->] Dense -> 7x7x64 -> conv 128 -> up to 14x14, `blocks` residual blocks of 64
    -> up to 28x28, `blocks` of 32.

    With one block per resolution: twice the conv decoder's FLOPs, spent
    where they are cheap per pixel (7x7 and 14x14) and on depth at full
    resolution; about 1.4 MB as ONNX. Each further pair of blocks adds
    58 MFLOP and 0.37 MB.

    Without hidden layers, every feature of the 7x7 map is a linear
    function of z (then relu): the layout of the garment, which the later
    local convolutions only refine, cannot combine latent dimensions
    non-linearly. A hidden layer of 64 units lets it, for 0.2 MFLOP and
    0.4 MB more (the map's kernel grows from 32 x 3136 to 64 x 3136); the
    last hidden layer's width sets the size, earlier ones are cheap.
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    x = z
    for units in hidden:
        x = layers.Dense(units, activation="relu")(x)
    x = layers.Dense(7 * 7 * 64, activation="relu")(x)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    for _ in range(blocks):
        x = residual_block(x, 64)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    for _ in range(blocks):
        x = residual_block(x, 32)
    image = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="image", dtype="float32")(x)
    return keras.Model(z, image, name="decoder")


ARCHITECTURES = {
    "dense": (build_dense_encoder, build_dense_decoder),
    "conv": (build_conv_encoder, build_conv_decoder),
    "residual": (build_residual_encoder, build_residual_decoder),
}
#: The encoders whose last feature map's side is a setting (`encoder_map`: 7 or 4), by architecture.
MAPPED_ENCODERS = {"residual": build_residual_encoder}
ENCODER_MAPS = (7, 4)
#: The decoders whose depth is a setting, by architecture: `decoder_blocks` (residual blocks per
#: resolution) and `decoder_hidden` (the widths of hidden Dense layers after z; none by default).
DEEP_DECODERS = {"residual": build_residual_decoder}


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

    Metrics are `keras.metrics.Mean` trackers, so what Keras logs per epoch
    is the mean over all batches (all test images, for validation), not the
    value of the last batch.
    """

    def __init__(
        self, encoder: keras.Model, decoder: keras.Model, seed: int | None = None, encoder_noise: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.sampling = Sampling(seed=seed)
        self.encoder_noise = encoder_noise
        # Its own stream, so that turning the noise on leaves the posterior samples' stream as it was.
        self.encoder_noise_seed = keras.random.SeedGenerator(None if seed is None else seed + 1)
        # KL warm-up scales the KL term of the *training* objective only;
        # every reported -ELBO uses the full KL.
        self.kl_weight = keras.Variable(1.0, trainable=False, name="kl_weight")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.neg_elbo_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, images, training=False):
        z_mean, z_log_var = self.encoder(images, training=training)
        return self.decoder(self.sampling([z_mean, z_log_var]), training=training)

    def encoder_input(self, images, training):
        """The images plus N(0, encoder_noise^2) noise per pixel while training; the images as they are otherwise.

        Amortized inference regularization (Shu et al., NeurIPS 2018, the
        denoising VAE): an encoder that must give nearby posteriors to
        nearby images is smoother, and a smoother encoder regularizes the
        decoder it trains. The decoder still reconstructs the clean image,
        so the objective stays a bound on the clean images' likelihood.
        """
        if not training or not self.encoder_noise:
            return images
        noise = keras.random.normal(ops.shape(images), stddev=self.encoder_noise, seed=self.encoder_noise_seed)
        return images + ops.cast(noise, images.dtype)

    def elbo_terms(self, images, training):
        z_mean, z_log_var = self.encoder(self.encoder_input(images, training), training=training)
        reconstruction = self.decoder(self.sampling([z_mean, z_log_var]), training=training)
        return vae_losses(images, reconstruction, z_mean, z_log_var)

    def update_metrics(self, neg_elbo, reconstruction, kl, batch_size):
        # Weight by batch size so a short last batch counts for what it holds.
        self.neg_elbo_tracker.update_state(neg_elbo, sample_weight=batch_size)
        self.reconstruction_tracker.update_state(reconstruction, sample_weight=batch_size)
        self.kl_tracker.update_state(kl, sample_weight=batch_size)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, images):
        with tf.GradientTape() as tape:
            neg_elbo, reconstruction, kl = self.elbo_terms(images, training=True)
            objective = reconstruction + self.kl_weight * kl
        gradients = tape.gradient(objective, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.update_metrics(neg_elbo, reconstruction, kl, ops.cast(ops.shape(images)[0], "float32"))

    def test_step(self, images):
        neg_elbo, reconstruction, kl = self.elbo_terms(images, training=False)
        return self.update_metrics(neg_elbo, reconstruction, kl, ops.cast(ops.shape(images)[0], "float32"))


#: "float32", or "mixed_bfloat16": bfloat16 arithmetic with float32 weights, which
#: runs about 1.75x faster on CPUs with AMX or AVX-512 BF16 units. The posterior
#: heads and the output layer stay float32 either way.
PRECISIONS = ("float32", "mixed_bfloat16")


def build_networks(
    arch: str,
    latent_dim: int,
    precision: str = "float32",
    decoder_blocks: int = 1,
    decoder_hidden: Sequence[int] = (),
    encoder_map: int = 7,
) -> tuple[keras.Model, keras.Model]:
    """(encoder, decoder) of `arch`, their layers computing in `precision`."""
    build_encoder, build_decoder = ARCHITECTURES[arch]
    build_deep_decoder = DEEP_DECODERS.get(arch)
    build_mapped_encoder = MAPPED_ENCODERS.get(arch)
    if encoder_map not in ENCODER_MAPS:
        raise ValueError(f"encoder map {encoder_map}: must be one of {', '.join(map(str, ENCODER_MAPS))}")
    if encoder_map != 7 and build_mapped_encoder is None:
        raise ValueError(f"encoder map {encoder_map}: only the {', '.join(MAPPED_ENCODERS)} architecture has it")
    if decoder_blocks != 1 and build_deep_decoder is None:
        raise ValueError(f"decoder blocks {decoder_blocks}: only the {', '.join(DEEP_DECODERS)} architecture has them")
    if decoder_hidden and build_deep_decoder is None:
        widths = " ".join(map(str, decoder_hidden))
        raise ValueError(f"decoder hidden layers {widths}: only the {', '.join(DEEP_DECODERS)} architecture has them")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        if build_deep_decoder is not None:
            decoder = build_deep_decoder(latent_dim, decoder_blocks, decoder_hidden)
        else:
            decoder = build_decoder(latent_dim)
        encoder = build_mapped_encoder(latent_dim, encoder_map) if build_mapped_encoder else build_encoder(latent_dim)
        return encoder, decoder
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
    precision: str = "float32",
    decoder_blocks: int = 1,
    decoder_hidden: Sequence[int] = (),
    encoder_noise: float = 0.0,
    encoder_map: int = 7,
) -> VAE:
    encoder, decoder = build_networks(arch, latent_dim, precision, decoder_blocks, decoder_hidden, encoder_map)
    return VAE(encoder, decoder, seed=seed, encoder_noise=encoder_noise, name=f"vae_{arch}")
