"""vae-gen on a small machine: the smallest memory limit that works, and throughput on one core.

For each model and thread setting, bisects the smallest `ulimit -v` (address
space, MiB) under which `vae-gen sample -n 64 --out x.npy` succeeds (below it,
the command must fail in one line with exit 2: that is checked too), then times
`vae-gen sample -n N --out x.npy` pinned to one core (`taskset -c 0`) and on
every core, as images per second including start-up.

    python benchmarks/low_resource.py [--models fashion-mnist-residual32,fashion-mnist-dense2] [-n 5000]

Run it in the environment whose figures you want: the base install
(`pip install vae-gen`) needs less memory than one with TensorFlow beside it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VAE_GEN = [sys.executable, "-m", "vae_gen"]


def run_limited(mib: int, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f'ulimit -v {mib * 1024}; exec "$@"', "limit", *argv],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def smallest_limit(argv: list[str], low: int = 64, high: int = 2048) -> tuple[int, int]:
    """(smallest MiB that succeeds, failures seen that were not one line with exit 2) by bisection."""
    bad = 0
    while high - low > 1:
        middle = (low + high) // 2
        result = run_limited(middle, argv)
        if result.returncode == 0:
            high = middle
        else:
            low = middle
            bad += result.returncode != 2 or len(result.stderr.strip().splitlines()) != 1
    return high, bad


def images_per_second(argv: list[str], n: int, pin: bool) -> float:
    command = (["taskset", "-c", "0"] if pin else []) + argv
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="fashion-mnist-residual32,fashion-mnist-dense2")
    parser.add_argument("-n", type=int, default=5000, help="images of the throughput runs")
    args = parser.parse_args()
    pinned = shutil.which("taskset") is not None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "x.npy")
        for model in args.models.split(","):
            for threads in (None, 1):
                extra = [] if threads is None else ["--threads", str(threads)]
                small = [*VAE_GEN, "sample", "--model", model, "-n", "64", "--out", out, "--overwrite", *extra]
                limit, bad = smallest_limit(small)
                bulk = [*VAE_GEN, "sample", "--model", model, "-n", str(args.n), "--out", out, "--overwrite", *extra]
                one = images_per_second(bulk, args.n, pin=True) if pinned else float("nan")
                every = images_per_second(bulk, args.n, pin=False)
                rows.append((model, "default" if threads is None else str(threads), limit, bad, one, every))
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; -n {args.n} for throughput")
    print(f"{'model':28} {'--threads':>9} {'min ulimit -v':>14} {'bad failures':>12} {'img/s 1 core':>13} {'img/s all':>10}")
    for model, threads, limit, bad, one, every in rows:
        print(f"{model:28} {threads:>9} {limit:>10} MiB {bad:>12} {one:13.0f} {every:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
