"""How much -ELBO the encoder leaves on the table, on training and on test images.

The amortization gap of an image is the -ELBO with the encoder's posterior
minus the -ELBO with the best diagonal Gaussian posterior for that image
alone, found here by optimizing its (z_mean, z_log_var) with Adam against
the fixed decoder. Measured on training and on test images, it splits a
model's train-test gap in two: the part the encoder adds on images it has
not seen (test gap minus train gap), and the decoder's own (the refined
test -ELBO minus the refined train -ELBO, less the 1.6 nats by which the
test images are harder; tests/test_data.py).

It also counts the active latent dimensions (Burda et al. 2015): those
whose posterior mean varies across the test images (variance > 0.01);
the rest carry no information about the image, whatever the latent size.

Both -ELBOs of an image average the same 20 seeded posterior samples, so
their difference is precise even on a few hundred images. Needs the train
extra; reads decoder.keras and encoder.keras from a run or model folder:

    python benchmarks/amortization_gap.py runs/residual32-hidden64 [--images 500] [--steps 300]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SCORING_SAMPLES = 20
#: A latent dimension is active when its posterior mean's variance across images exceeds this.
ACTIVE_VARIANCE = 0.01


def neg_elbo_per_image(decoder, images, z_mean, z_log_var, samples: int, seed: int):
    """-ELBO of each image as evaluation defines it (train/metrics.py), its BCE averaged over `samples` seeded draws."""
    import numpy as np

    from vae_gen.train.metrics import bce_per_image, kl_per_image

    rng = np.random.default_rng(seed)
    reconstruction = np.zeros(len(images))
    for _ in range(samples):
        z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape).astype(np.float32)
        reconstruction += bce_per_image(images, decoder.predict(z, batch_size=500, verbose=0)) / samples
    return reconstruction + kl_per_image(z_mean, z_log_var)


def refine(decoder, images, z_mean, z_log_var, steps: int, learning_rate: float):
    """Each image's own (z_mean, z_log_var), optimized from the encoder's with one posterior sample per step."""
    import keras
    import tensorflow as tf

    from vae_gen.train.model import vae_losses

    mean, log_var = tf.Variable(z_mean), tf.Variable(z_log_var)
    optimizer = keras.optimizers.Adam(learning_rate)
    generator = tf.random.Generator.from_seed(2)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            z = mean + tf.exp(0.5 * log_var) * generator.normal(tf.shape(mean))
            # The training loss itself: its batch mean moves each image's posterior as a sum would under Adam.
            loss, _, _ = vae_losses(images, decoder(z, training=False), mean, log_var)
        optimizer.apply_gradients(zip(tape.gradient(loss, [mean, log_var]), [mean, log_var], strict=True))

    for _ in range(steps):
        step()
    return mean.numpy(), log_var.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a run folder or model folder holding decoder.keras and encoder.keras")
    parser.add_argument("--images", type=int, default=500, help="first N training and first N test images")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per posterior (default 300)")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from vae_gen.train.data import load_fashion_mnist, to_float_images

    encoder = keras.saving.load_model(os.path.join(args.folder, "encoder.keras"), compile=False, safe_mode=True)
    decoder = keras.saving.load_model(os.path.join(args.folder, "decoder.keras"), compile=False, safe_mode=True)
    data = load_fashion_mnist(None)
    print(f"{args.folder}: first {args.images} images of each split, {args.steps} Adam steps at {args.learning_rate}")
    print("| images | encoder's -ELBO | refined -ELBO | amortization gap |\n|---|---|---|---|")
    for split, raw in (("train", data.train_images), ("test", data.test_images)):
        images = to_float_images(raw[: args.images])
        z_mean, z_log_var = encoder.predict(images, batch_size=500, verbose=0)
        # The same seeded draws score both posteriors: the difference is then the posteriors', not the noise's.
        before = neg_elbo_per_image(decoder, images, z_mean, z_log_var, SCORING_SAMPLES, seed=1).mean()
        mean, log_var = refine(decoder, tf.constant(images), z_mean, z_log_var, args.steps, args.learning_rate)
        after = neg_elbo_per_image(decoder, images, mean, log_var, SCORING_SAMPLES, seed=1).mean()
        print(f"| {split} | {before:.2f} | {after:.2f} | {before - after:.2f} |", flush=True)
    z_mean, _ = encoder.predict(to_float_images(data.test_images), batch_size=500, verbose=0)
    active = int((z_mean.var(axis=0) > ACTIVE_VARIANCE).sum())
    print(f"active latent dimensions over the {len(z_mean)} test images: {active} of {z_mean.shape[1]}")


if __name__ == "__main__":
    main()
