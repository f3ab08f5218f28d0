"""Seconds per training epoch: architectures in float32 against mixed_bfloat16, and the residual model's options.

Trains STEPS batches of real training images (after one warm-up pass that
traces the graphs) the way `vae-gen train` does (its optimizer, its steps
per call into the graph, the multi-threaded --nondeterministic kernels) and
scales to one 60,000-image epoch. Needs the train extra:

    python benchmarks/training_speed.py [--arch conv residual] [--steps 100] [--decoder-blocks 1 2]
    python benchmarks/training_speed.py --recipe [--batch-size 64 32] [--encoder-map 7 4]

The first form compares the architectures (latent 16, batch 128). --recipe
times the default model's recipe instead (residual, latent 32, one hidden
decoder layer of 64, weight decay, mixed_bfloat16) at each batch size and
encoder map. The machine's speed wanders (other work, shared cores): the
best of --repeats timed passes is reported.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRAIN_IMAGES = 60_000


def seconds_per_epoch(
    arch: str,
    precision: str,
    steps: int,
    batch_size: int = 128,
    repeats: int = 1,
    latent_dim: int = 16,
    decoder_blocks: int = 1,
    decoder_hidden: tuple[int, ...] = (),
    encoder_map: int = 7,
    weight_decay: float = 0.0,
) -> float:
    import keras
    import tensorflow as tf
    from vae_gen.train.data import load_fashion_mnist, to_float_images
    from vae_gen.train.fit import STEPS_PER_EXECUTION, TrainSettings, build_optimizer
    from vae_gen.train.model import build_vae

    images = to_float_images(load_fashion_mnist(None).train_images[: steps * batch_size])
    keras.utils.set_random_seed(0)
    vae = build_vae(
        arch, latent_dim, seed=0, precision=precision, decoder_blocks=decoder_blocks,
        decoder_hidden=decoder_hidden, encoder_map=encoder_map,
    )  # fmt: skip
    settings = TrainSettings(arch=arch, batch_size=batch_size, weight_decay=weight_decay)
    vae.compile(optimizer=build_optimizer(settings, steps_per_epoch=steps), steps_per_execution=STEPS_PER_EXECUTION)
    batches = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    vae.fit(batches, epochs=1, verbose=0)  # traces the graphs
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        vae.fit(batches, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - started)
    return best * TRAIN_IMAGES / (steps * batch_size)


def compare_architectures(args: argparse.Namespace) -> None:
    from vae_gen.train.model import PRECISIONS

    print(f"seconds per 60,000-image epoch, batch 128, {os.cpu_count()} cores, from {args.steps} timed steps")
    print(f"{'arch':12}" + "".join(f"{p:>16}" for p in PRECISIONS) + f"{'speed-up':>10}")
    for arch, blocks in [(a, b) for a in args.arch for b in (args.decoder_blocks if a == "residual" else [1])]:
        seconds = [
            seconds_per_epoch(arch, p, args.steps, repeats=args.repeats, decoder_blocks=blocks) for p in PRECISIONS
        ]
        name = f"{arch} x{blocks}" if blocks != 1 else arch
        print(f"{name:12}" + "".join(f"{s:>16.1f}" for s in seconds) + f"{seconds[0] / seconds[1]:>9.2f}x")


def time_the_recipe(args: argparse.Namespace) -> None:
    print(f"the default's recipe (residual, latent 32, --decoder-hidden 64, --weight-decay 0.05, mixed_bfloat16): "
          f"seconds per 60,000-image epoch, best of {args.repeats} passes of {args.steps} steps, {os.cpu_count()} cores")
    print(f"{'batch':>6}{'encoder map':>13}{'s/epoch':>9}{'steps/epoch':>13}{'ms/step':>9}")
    for batch_size in args.batch_size:
        for encoder_map in args.encoder_map:
            seconds = seconds_per_epoch(
                "residual", "mixed_bfloat16", args.steps, batch_size, args.repeats, latent_dim=32,
                decoder_hidden=(64,), encoder_map=encoder_map, weight_decay=0.05,
            )  # fmt: skip
            steps = -(-TRAIN_IMAGES // batch_size)
            print(f"{batch_size:>6}{encoder_map:>13}{seconds:>9.1f}{steps:>13}{seconds * 1000 / steps:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["conv", "residual"], help="architectures to compare")
    parser.add_argument("--steps", type=int, default=100, help="batches timed per pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per figure; the best is reported")
    parser.add_argument("--decoder-blocks", type=int, nargs="+", default=[1],
                        help="residual blocks per decoder resolution to compare (residual architecture only)")
    parser.add_argument("--recipe", action="store_true", help="time the default's recipe instead of comparing archs")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 32], help="batch sizes of --recipe")
    parser.add_argument("--encoder-map", type=int, nargs="+", default=[7, 4], help="encoder maps of --recipe")
    args = parser.parse_args()
    if args.recipe:
        time_the_recipe(args)
    else:
        compare_architectures(args)


if __name__ == "__main__":
    main()
