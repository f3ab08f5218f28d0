"""Seconds per training epoch of each architecture, float32 against mixed_bfloat16.

Trains STEPS batches of 128 real training images (after one warm-up pass
that traces the graphs) with the multi-threaded (--nondeterministic)
kernels, and scales to one 60,000-image epoch. Needs the train extra:

    python benchmarks/training_speed.py [--arch conv residual] [--steps 100] [--decoder-blocks 1 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 128
EPOCH_STEPS = -(-60_000 // BATCH)


def seconds_per_epoch(arch: str, precision: str, steps: int, decoder_blocks: int = 1) -> float:
    import keras
    import tensorflow as tf

    from vae_gen.train.data import load_fashion_mnist, to_float_images
    from vae_gen.train.model import build_vae

    images = to_float_images(load_fashion_mnist(None).train_images[: steps * BATCH])
    keras.utils.set_random_seed(0)
    vae = build_vae(arch, 16, seed=0, precision=precision, decoder_blocks=decoder_blocks)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    batches = tf.data.Dataset.from_tensor_slices(images).batch(BATCH)
    vae.fit(batches, epochs=1, verbose=0)  # traces the graphs
    started = time.perf_counter()
    vae.fit(batches, epochs=1, verbose=0)
    return (time.perf_counter() - started) * EPOCH_STEPS / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["conv", "residual"])
    parser.add_argument("--steps", type=int, default=100, help="batches of 128 timed per figure")
    parser.add_argument("--decoder-blocks", type=int, nargs="+", default=[1],
                        help="residual blocks per decoder resolution to time (residual architecture only)")
    args = parser.parse_args()

    from vae_gen.train.model import PRECISIONS

    print(f"seconds per 60,000-image epoch, batch {BATCH}, {os.cpu_count()} cores, from {args.steps} timed steps")
    print(f"{'arch':12}" + "".join(f"{p:>16}" for p in PRECISIONS) + f"{'speed-up':>10}")
    for arch, blocks in [(a, b) for a in args.arch for b in (args.decoder_blocks if a == "residual" else [1])]:
        seconds = [seconds_per_epoch(arch, precision, args.steps, blocks) for precision in PRECISIONS]
        name = f"{arch} x{blocks}" if blocks != 1 else arch
        print(f"{name:12}" + "".join(f"{s:>16.1f}" for s in seconds) + f"{seconds[0] / seconds[1]:>9.2f}x")


if __name__ == "__main__":
    main()
