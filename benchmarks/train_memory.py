"""Peak memory of training on a large folder of images: the images stay uint8, never a float32 copy of the set.

Writes IMAGES RGB PNGs of SIZE x SIZE (coloured shapes, in class subfolders)
into a folder (kept between runs, made once), then runs

    vae-gen train --data FOLDER --arch dense --epochs 1 ...

in a child process and reports its peak resident memory (ru_maxrss), next to
the size of the images as uint8 and as float32. Needs the train extra:

    python benchmarks/train_memory.py [--images 50000] [--size 64] [--folder /tmp/vae-gen-train-memory]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = {"red": (220, 40, 30), "green": (40, 200, 60), "blue": (30, 60, 230), "yellow": (230, 210, 40)}


def write_folder(folder: Path, images: int, size: int) -> None:
    from vae_gen.output.images import save_png

    rng = np.random.default_rng(0)
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(images):
        name, colour = list(CLASSES.items())[i % len(CLASSES)]
        image = np.zeros((size, size, 3), np.uint8)
        side = int(rng.integers(size // 8, size // 2))
        top, left = rng.integers(0, size - side, 2)
        image[top : top + side, left : left + side] = colour
        save_png(image, folder / name / f"{i:06d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "vae-gen-train-memory")
    args = parser.parse_args()

    folder = args.folder / f"{args.images}x{args.size}"
    if not (folder / ".complete").exists():
        started = time.perf_counter()
        write_folder(folder, args.images, args.size)
        (folder / ".complete").touch()
        print(f"wrote {args.images:,} PNGs of {args.size}x{args.size} RGB to {folder} in {time.perf_counter() - started:.0f} s")
    run = folder.parent / f"run-{os.getpid()}"
    command = [sys.executable, "-m", "vae_gen", "train", "--data", str(folder), "--arch", "dense", "--latent-dim", "16",
               "--epochs", "1", "--batch-size", "128", "--no-deterministic", "--out", str(run)]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
    pixels = args.images * args.size * args.size * 3
    print(f"{'images':>8} {'size':>7} {'uint8 set':>10} {'float32 set':>12} {'peak RSS':>10} {'wall':>7}")
    print(f"{args.images:>8,} {args.size:>3}x{args.size:<3} {pixels / 2**20:>7.0f} MB {4 * pixels / 2**20:>9.0f} MB "
          f"{peak_mb:>7.0f} MB {seconds:>6.0f}s")  # fmt: skip
    print(f"(one epoch of `{' '.join(command[1:])}`; the run folder is {run})")


if __name__ == "__main__":
    main()
