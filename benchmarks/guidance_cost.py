"""What class guidance costs: images per second of generate() on a conditional model at each guidance.

    python benchmarks/guidance_cost.py [--model fashion-mnist-conditional32] [--guidance 0,1] [--images 8192]
        [--repeats 3] [--threads N]

Guidance decodes every batch twice (with the label asked for and with the uniform label) and mixes the two
in numpy, so it should cost about twice the decoder; this measures it. Best of --repeats runs of
generate(--images, label="all") in the runtime's default batches. Runs on the base install.
"""

from __future__ import annotations

import argparse
import time

import vae_gen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fashion-mnist-conditional32")
    parser.add_argument("--guidance", default="0,1", help="comma-separated (default 0,1)")
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its own)")
    args = parser.parse_args(argv)
    gen = vae_gen.Generator(args.model, threads=args.threads)
    if not gen.classes:
        raise SystemExit(f"guidance_cost.py: {gen.name} is not class-conditional; give one with --model")
    gen.generate(64, label="all")  # opens the session: not part of what is timed
    print(f"{gen.name}: generate({args.images:,}, label='all'), best of {args.repeats}, threads {args.threads or 'default'}\n")
    print("| guidance | images per second | µs per image | relative to guidance 0 |\n|---|---|---|---|")
    baseline = None
    for text in args.guidance.split(","):
        guidance = float(text)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            gen.generate(args.images, seed=0, label="all", guidance=guidance)
            times.append(time.perf_counter() - started)
        seconds = min(times)
        baseline = baseline or seconds
        print(f"| {guidance:g} | {args.images / seconds:,.0f} | {1e6 * seconds / args.images:.0f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
