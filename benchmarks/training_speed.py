"""Seconds per training epoch: architectures in float32 against mixed_bfloat16, or one recipe by batch size.

Trains STEPS batches of real training images (after one warm-up pass that
traces the graphs) the way `vae-gen train` does (its optimizer, its steps
per call into the graph, the multi-threaded nondeterministic kernels) and
scales to one 60,000-image epoch. Needs the train extra:

    python benchmarks/training_speed.py [--arch conv residual] [--steps 100]
    python benchmarks/training_speed.py --recipe recipes/fashion-mnist-residual32.json [--batch-size 64 32]

The first form compares the architectures (latent 16, batch 128). --recipe
times a recipe's model, precision and optimizer at each batch size. The
machine's speed wanders (other work, shared cores): the best of --repeats
timed passes is reported.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRAIN_IMAGES = 60_000


def seconds_per_epoch(settings, steps: int, repeats: int = 1) -> float:
    import keras
    import tensorflow as tf

    from vae_gen.train.data import load_fashion_mnist, to_float_images
    from vae_gen.train.fit import STEPS_PER_EXECUTION, build_optimizer
    from vae_gen.train.model import build_vae

    images = to_float_images(load_fashion_mnist(None).train_images[: steps * settings.batch_size])
    keras.utils.set_random_seed(0)
    vae = build_vae(settings.arch, settings.latent_dim, seed=0, precision=settings.precision)
    vae.compile(optimizer=build_optimizer(settings, steps_per_epoch=steps), steps_per_execution=STEPS_PER_EXECUTION)
    batches = tf.data.Dataset.from_tensor_slices(images).batch(settings.batch_size)
    vae.fit(batches, epochs=1, verbose=0)  # traces the graphs
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        vae.fit(batches, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - started)
    return best * TRAIN_IMAGES / (steps * settings.batch_size)


def compare_architectures(args: argparse.Namespace) -> None:
    from vae_gen.training.settings import PRECISIONS, TrainSettings

    print(f"seconds per 60,000-image epoch, batch 128, {os.cpu_count()} cores, from {args.steps} timed steps")
    print(f"{'arch':12}" + "".join(f"{p:>16}" for p in PRECISIONS) + f"{'speed-up':>10}")
    for arch in args.arch:
        seconds = [
            seconds_per_epoch(TrainSettings(arch=arch, latent_dim=16, precision=p, batch_size=128), args.steps, args.repeats)
            for p in PRECISIONS
        ]
        print(f"{arch:12}" + "".join(f"{s:>16.1f}" for s in seconds) + f"{seconds[0] / seconds[1]:>9.2f}x")


def time_the_recipe(args: argparse.Namespace) -> None:
    from vae_gen.training.settings import TrainSettings

    recipe = TrainSettings.from_file(args.recipe)
    print(f"{args.recipe} ({recipe.arch}, latent {recipe.latent_dim}, {recipe.precision}): seconds per 60,000-image "
          f"epoch, best of {args.repeats} passes of {args.steps} steps, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'batch':>6}{'s/epoch':>9}{'steps/epoch':>13}{'ms/step':>9}")
    for batch_size in args.batch_size:
        seconds = seconds_per_epoch(recipe.replace(batch_size=batch_size), args.steps, args.repeats)
        steps = -(-TRAIN_IMAGES // batch_size)
        print(f"{batch_size:>6}{seconds:>9.1f}{steps:>13}{seconds * 1000 / steps:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["conv", "residual"], help="architectures to compare")
    parser.add_argument("--steps", type=int, default=100, help="batches timed per pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per figure; the best is reported")
    parser.add_argument("--recipe", type=Path, help="time this recipe (a `vae-gen train --config` file) instead")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 32], help="batch sizes of --recipe")
    args = parser.parse_args()
    if args.recipe:
        time_the_recipe(args)
    else:
        compare_architectures(args)


if __name__ == "__main__":
    main()
