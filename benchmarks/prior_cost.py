"""What a prior graph costs per image, against the decoder it feeds: a table of microseconds per image.

    python benchmarks/prior_cost.py --model MODEL_WITH_PRIOR [--more MODEL ...] [--images 8192] [--batch 32]
        [--repeats 5] [--threads N]

For each model: the prior graph (noise -> z) and the decoder (z -> image), each run over --images rows in
batches of --batch (the runtime's default decode batch), best of --repeats, and end-to-end generate()
with and without the prior. Runs on the base install (onnxruntime, numpy).
"""

from __future__ import annotations

import argparse
import time

import vae_gen
from vae_gen.sampling.generator import DEFAULT_BATCH_SIZE


def best_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(model: str, images: int, batch: int, repeats: int, threads: int | None) -> str:
    """One table row: microseconds per image of the prior graph, the decoder, and generate() with and without it."""
    gen = vae_gen.Generator(model, threads=threads)
    plain = vae_gen.Generator(model, threads=threads, use_prior=False)
    if gen.card.prior is None:
        raise SystemExit(f"model {gen.name!r} has no prior graph")
    noise = gen.noise(images, seed=0)
    z = gen.to_latents(noise)

    def prior() -> None:
        for lo in range(0, images, batch):
            gen.to_latents(noise[lo : lo + batch])

    per = 1e6 / images
    prior_us = best_seconds(prior, repeats) * per
    decoder_us = best_seconds(lambda: gen.decode(z, batch_size=batch), repeats) * per
    with_prior = best_seconds(lambda: gen.generate(images, 0, batch_size=batch), repeats) * per
    without = best_seconds(lambda: plain.generate(images, 0, batch_size=batch), repeats) * per
    return (f"| {gen.name} | {gen.card.prior.kind} | {prior_us:.1f} | {decoder_us:.1f} | {prior_us / decoder_us:.3f} | "
            f"{with_prior:.1f} | {without:.1f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--more", nargs="*", default=[])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    print(f"{args.images:,} images in batches of {args.batch}, best of {args.repeats}; microseconds per image")
    print("| model | prior kind | prior graph | decoder | prior / decoder | generate, prior | generate, --prior none |")
    print("|---|---|---|---|---|---|---|")
    for model in [args.model, *args.more]:
        print(measure(model, args.images, args.batch, args.repeats, args.threads), flush=True)


if __name__ == "__main__":
    main()
