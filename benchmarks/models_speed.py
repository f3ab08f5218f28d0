"""Shipped models side by side: how fast each decodes, on one machine, in one run.

For each model: its decoder's MFLOP per image (from model.json) and the images per second that
`Generator.decode_uint8` reaches at batch 1, 64 and 1024 on the same N(0, I) latents (the median of --runs
timed repetitions after one warm-up), with each speed's ratio to the first model's. Runtime only (no
TensorFlow); run it on an otherwise idle machine:

    python benchmarks/models_speed.py [MODEL ...] [--runs 5] [--threads N]

Default models: the default and the sharp models trained from it, then the conditional pair.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import vae_gen
from vae_gen.model.engine import engine_fingerprint

DEFAULT_MODELS = [
    "fashion-mnist-residual32",
    "fashion-mnist-residual32-sharp",
    "fashion-mnist-residual32-sharp-ac-samples",
    "fashion-mnist-conditional32",
    "fashion-mnist-conditional32-sharp",
    "fashion-mnist-conditional32-sharp-ac",
]
BATCHES = (1, 64, 1024)
#: Images decoded per timed repetition at each batch size (whole batches).
IMAGES_PER_RUN = {1: 256, 64: 2048, 1024: 4096}


def images_per_second(generator: vae_gen.Generator, batch: int, runs: int) -> float:
    """Median images/s of decode_uint8 over `runs` repetitions of IMAGES_PER_RUN[batch] images."""
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((batch, generator.latent_dim)).astype(np.float32)
    label = 0 if generator.classes else None
    calls = IMAGES_PER_RUN[batch] // batch
    generator.decode_uint8(latents, label=label)  # warm-up: first-call allocations
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(calls):
            generator.decode_uint8(latents, label=label)
        rates.append(calls * batch / (time.perf_counter() - started))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS, help="model names or folders")
    parser.add_argument("--runs", type=int, default=5, help="timed repetitions per batch size (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: the usable cores)")
    args = parser.parse_args(argv)

    engine = engine_fingerprint()
    print(f"images/s decoded to uint8, median of {args.runs}, {os.cpu_count()} cores ({engine['cpu']}), "
          f"onnxruntime {engine['onnxruntime']}")  # fmt: skip
    header = ["model", "MFLOP/image", *[f"batch {b}" for b in BATCHES]]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    first: list[float] = []
    for model in args.models:
        generator = vae_gen.Generator(model, threads=args.threads)
        rates = [images_per_second(generator, batch, args.runs) for batch in BATCHES]
        first = first or rates
        cells = [f"{rate:,.0f} ({rate / base:.2f}x)" for rate, base in zip(rates, first, strict=True)]
        flops = generator.card.decoder_flops / 1e6
        print(f"| `{generator.name}` | {flops:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
