"""The adversarial objective: the negative ELBO plus a discriminator's verdict on prior samples and
reconstructions (VAE-GAN, Larsen et al. 2016), or on prior samples only, for a decoder that draws sharp images.

Why: a decoder trained on the Bernoulli likelihood alone outputs the mean of
everything a z could be, so its samples are the blurred average of plausible
garments (docs/experiments.md). A discriminator that tells real images from
decoded ones pushes the decoder towards images that look like one garment.
The ELBO term stays, so the encoder remains a posterior of an N(0, I) latent
space and everything downstream (export, priors, conditioning) is unchanged.
The discriminator exists only while training: it is saved in the run folder,
never exported, and the exported decoder is still `z [, label] -> image`.

Stabilizers, each where it acts:
- R1 gradient penalty on real images (Mescheder et al. 2018), so the
  discriminator cannot grow arbitrarily steep around the data;
- an adaptive adversarial weight (VQGAN, Esser et al. 2021): the adversarial
  gradient at the decoder's output layer is `adversarial_weight` times the
  ELBO's gradient there, whatever the two losses' scales do during training;
- an exponential moving average of the decoder's weights, which is what gets
  saved and exported (the raw weights chase the discriminator step by step).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from .model import VAE, label_input, vae_losses

#: Per-step momentum of the decoder's weight average: a horizon of about 1,000 steps.
DECODER_AVERAGE_MOMENTUM = 0.999
#: The discriminator's Adam: the usual GAN settings (a short memory of the first moment).
DISCRIMINATOR_LEARNING_RATE = 2e-4
DISCRIMINATOR_BETA_1 = 0.5
#: Bounds of the adaptive weight (VQGAN's), so one batch with a vanishing adversarial gradient cannot blow it up.
MAX_ADAPTIVE_SCALE = 1e4


def build_discriminator(
    image_shape: tuple[int, int, int], classes: int = 0, depth: int = 2, class_head: int = 0
) -> keras.Model:
    """Image [, label] -> one logit per image (real: high). `depth` stride-2 convolutions (64 channels, doubling)
    and a Dense layer. With classes (a conditional model's labels), a projection term (Miyato & Koyama 2018): the
    logit gains <h, embed(label)>, so the verdict is about the image *as* the class it was asked to be. With
    `class_head` K, a second output, K class logits (the auxiliary classifier of AC-GAN, Odena et al. 2017)."""
    image, label = keras.Input(shape=image_shape, name="image"), label_input(classes)
    x = image
    for level in range(depth):
        x = layers.Conv2D(64 * 2**level, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    h = layers.LeakyReLU(0.2)(layers.Dense(256)(layers.Flatten()(x)))
    logit = layers.Dense(1)(h)
    if label is not None:
        projection = layers.Dot(axes=1)([h, layers.Dense(256, use_bias=False)(label)])
        logit = layers.Add()([logit, projection])
    outputs = [logit, layers.Dense(class_head, name="class_logits")(h)] if class_head else logit
    return keras.Model(image if label is None else [image, label], outputs, name="discriminator")


def confidence_loss(class_logits):
    """CatGAN's generator term (Springenberg 2016) for images decoded without a label: each should be clearly one
    class (low entropy of its class distribution) while the batch covers the classes evenly (high entropy of
    their mean), so the term cannot be met by drawing one easy class."""
    p = tf.nn.softmax(tf.cast(class_logits, tf.float32))
    each = -tf.reduce_mean(tf.reduce_sum(p * tf.math.log(p + 1e-8), axis=1))
    mean = tf.reduce_mean(p, axis=0)
    return each + tf.reduce_sum(mean * tf.math.log(mean + 1e-8))


class AdversarialVAE(VAE):
    """A VAE whose decoder also answers to a discriminator. Metrics: the VAE's (-ELBO, reconstruction, KL),
    plus `discriminator` (its loss with R1), `adversarial` (the decoder's non-saturating loss) and
    `adaptive_scale` (the factor that balances it, before `adversarial_weight`)."""

    def __init__(self, encoder, decoder, discriminator: keras.Model, adversarial_weight: float, seed=None,
                 r1_gamma: float = 1.0, class_weight: float = 0.0, judge_reconstructions: bool = True,
                 **kwargs):  # fmt: skip
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        # False: only prior samples face the discriminator, and the reconstructions answer to the ELBO alone (they
        # need not invent texture the latent does not hold); the sampled images, what users see, get every fake slot.
        self.judge_reconstructions = judge_reconstructions
        self.discriminator = discriminator
        self.adversarial_weight = adversarial_weight
        self.class_weight = class_weight  # > 0 only with a discriminator built with a `class_head`
        self.r1_gamma = r1_gamma  # the R1 penalty's weight: gamma / 2 * E ||grad_x D(x)||^2 on real images
        self.prior_noise = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.output_kernel = next(layer.kernel for layer in reversed(decoder.layers) if hasattr(layer, "kernel"))
        self.decoder_average = [
            keras.Variable(weight, trainable=False, name=f"average_{i}") for i, weight in enumerate(decoder.weights)
        ]
        self.discriminator_tracker = keras.metrics.Mean(name="discriminator")
        self.adversarial_tracker = keras.metrics.Mean(name="adversarial")
        self.adaptive_scale_tracker = keras.metrics.Mean(name="adaptive_scale")
        self.class_tracker = keras.metrics.Mean(name="class_loss") if class_weight else None

    @property
    def metrics(self):
        trackers = [self.discriminator_tracker, self.adversarial_tracker, self.adaptive_scale_tracker]
        return [*super().metrics, *trackers, *([self.class_tracker] if self.class_tracker else [])]

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = keras.optimizers.Adam(DISCRIMINATOR_LEARNING_RATE, beta_1=DISCRIMINATOR_BETA_1)
        self.discriminator_optimizer.build(self.discriminator.trainable_weights)

    def optimized_weights(self) -> list:
        return self.encoder.trainable_weights + self.decoder.trainable_weights

    def state_variables(self) -> list:
        # The discriminator's weights and the decoder's average are the model's variables already.
        return [*super().state_variables(), *self.discriminator_optimizer.variables]

    def judged(self, images, labels):
        """The discriminator's realness logits, and its class logits (None without the auxiliary classifier)."""
        verdict = self.discriminator(images if labels is None else [images, labels], training=True)
        return tuple(verdict) if self.class_weight else (verdict, None)

    def class_loss(self, class_logits, labels):
        """Cross-entropy of the auxiliary classifier against the (one-hot) labels."""
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, tf.cast(class_logits, tf.float32)))

    def split_classes(self, data):
        """(images, conditioning labels or None, the images' classes for the class head or None). An unconditional
        model trained with a class weight is given (images, one-hot classes) batches: the classes only teach the
        discriminator's class head."""
        if self.class_weight and not self.conditional:
            images, classes = data
            return images, None, classes
        images, labels = self.split(data)
        return images, labels, labels

    def train_step(self, data):
        images, labels, true_classes = self.split_classes(data)
        batch = tf.shape(images)[0]
        z_prior = keras.random.normal((batch, self.decoder.inputs[0].shape[-1]), seed=self.prior_noise)
        vae_weights = self.optimized_weights()

        # The VAE: ELBO, plus fooling the discriminator with its prior samples (and reconstructions, if judged).
        with tf.GradientTape(persistent=True) as tape:
            reconstruction, z_mean, z_log_var = self.reconstruct(images, labels, training=True)
            generated = self.decoder(z_prior if labels is None else [z_prior, labels], training=True)
            neg_elbo, reconstruction_loss, kl = vae_losses(images, reconstruction, z_mean, z_log_var)
            likelihood_loss = reconstruction_loss + self.kl_weight * kl
            fakes, fake_labels = generated, labels
            if self.judge_reconstructions:  # the reconstructions too, each with its image's label
                fakes = tf.concat([reconstruction, generated], axis=0)
                fake_labels = None if labels is None else tf.concat([labels, labels], axis=0)
            fake_logits, fake_class_logits = self.judged(fakes, fake_labels)
            adversarial_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
            with tape.stop_recording():
                likelihood_norm = tf.norm(tape.gradient(likelihood_loss, self.output_kernel))
                adversarial_norm = tf.norm(tape.gradient(adversarial_loss, self.output_kernel))
                scale = tf.clip_by_value(likelihood_norm / (adversarial_norm + 1e-4), 0.0, MAX_ADAPTIVE_SCALE)
            decoder_verdict = adversarial_loss
            if self.class_weight and labels is not None:  # decoded images should show the label they were given
                decoder_verdict += self.class_weight * self.class_loss(fake_class_logits, fake_labels)
            elif self.class_weight:  # without labels: each image clearly one class, the classes evenly covered
                decoder_verdict += self.class_weight * confidence_loss(fake_class_logits)
            objective = likelihood_loss + self.adversarial_weight * scale * decoder_verdict
        gradients = tape.gradient(objective, vae_weights)
        del tape
        self.optimizer.apply_gradients(zip(gradients, vae_weights, strict=True))
        for average, weight in zip(self.decoder_average, self.decoder.weights, strict=True):
            average.assign(DECODER_AVERAGE_MOMENTUM * average + (1.0 - DECODER_AVERAGE_MOMENTUM) * weight)

        # The discriminator: real images high, decoded ones low, and flat around the real ones (R1).
        fakes = tf.stop_gradient(fakes)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(images)
                real_logits, real_class_logits = self.judged(images, labels)
                real_sum = tf.reduce_sum(real_logits)
            slopes = r1_tape.gradient(real_sum, images)
            r1 = tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=[1, 2, 3]))
            fake_logits, _ = self.judged(fakes, fake_labels)
            discriminator_loss = (
                tf.reduce_mean(tf.nn.softplus(-real_logits))
                + tf.reduce_mean(tf.nn.softplus(fake_logits))
                + 0.5 * self.r1_gamma * r1
            )
            if self.class_weight:  # the classifier learns from real images only, so it cannot be taught by fakes
                real_class_loss = self.class_loss(real_class_logits, true_classes)
                discriminator_loss += real_class_loss
        weights = self.discriminator.trainable_weights
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(discriminator_loss, weights), weights, strict=True))

        batch_size = tf.cast(batch, tf.float32)
        self.discriminator_tracker.update_state(discriminator_loss, sample_weight=batch_size)
        self.adversarial_tracker.update_state(adversarial_loss, sample_weight=batch_size)
        self.adaptive_scale_tracker.update_state(scale, sample_weight=batch_size)
        if self.class_tracker is not None:
            self.class_tracker.update_state(real_class_loss, sample_weight=batch_size)
        self.update_metrics(neg_elbo, reconstruction_loss, kl, images if labels is None else (images, labels))
        return {m.name: m.result() for m in self.metrics}

    def use_decoder_average(self) -> None:
        """Give the decoder its averaged weights: what gets saved, scored and exported."""
        for average, weight in zip(self.decoder_average, self.decoder.weights, strict=True):
            weight.assign(average)

    def decoder_average_values(self) -> list:
        """The averaged decoder weights as arrays, for scoring a copy of the decoder between epochs."""
        return [average.numpy() for average in self.decoder_average]
