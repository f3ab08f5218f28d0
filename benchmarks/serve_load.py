"""Sustained load on `vae-gen serve` over loopback: throughput, latency, errors, and whether its memory grows.

Starts `vae-gen serve` in a child process and drives it, each scenario for
--seconds (bounded: it stops by itself):
- one-image PNGs (GET /v1/models/M/images/SEED/I.png, I counting up, as a page of
  thumbnails asks) at 1 and 32 clients;
- 64-image contact sheets (POST /v1/generate, format png) at 8 clients, against
  the in-process `Generator.generate` throughput of the same model;
then a soak of --soak one-image requests at 8 clients, with the server's
resident memory (VmRSS, Linux) after the first 1,000 and at the end. Needs the
serve extra:

    python benchmarks/serve_load.py [--seconds 10] [--soak 100000] [--model fashion-mnist-residual32]
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Load:
    """`clients` threads sending requests made by `make(i)` until `seconds` pass or `total` requests are sent."""

    def __init__(self, make, clients: int, seconds: float | None = None, total: int | None = None, on_count=None):
        self.make, self.clients, self.seconds, self.total, self.on_count = make, clients, seconds, total, on_count
        self.latencies: list[float] = []
        self.errors = 0
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def worker(self, deadline: float) -> None:
        while time.perf_counter() < deadline:
            i = next(self.counter)
            if self.total is not None and i >= self.total:
                return
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.make(i), timeout=60) as response:
                    response.read()
                    ok = response.status == 200
            except OSError:
                ok = False
            with self.lock:
                self.latencies.append(time.perf_counter() - started)
                self.errors += not ok
                done = len(self.latencies)
            if self.on_count is not None:
                self.on_count(done)

    def run(self) -> float:
        started = time.perf_counter()
        deadline = started + (self.seconds if self.seconds is not None else 3600)
        threads = [threading.Thread(target=self.worker, args=(deadline,)) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed scenario")
    parser.add_argument("--soak", type=int, default=100_000, help="one-image requests of the memory soak")
    parser.add_argument("--model", default="fashion-mnist-residual32")
    args = parser.parse_args()

    import vae_gen

    generator = vae_gen.load(args.model)
    generator.generate(64, seed=0)
    started, sheets = time.perf_counter(), 0
    while time.perf_counter() - started < args.seconds:  # as long as a scenario: the machine's speed wanders
        generator.generate(64, seed=sheets)
        sheets += 1
    in_process = sheets * 64 / (time.perf_counter() - started)

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vae_gen", "serve", "--port", str(port), "--model", args.model],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    image_url = f"{base}/v1/models/{args.model}/images"
    sheet = json.dumps({"n": 64, "seed": 0, "format": "png"}).encode()
    rows = []
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        start_rss = rss_mb(server.pid)
        for name, clients, make, images in [
            ("one-image PNG", 1, lambda i: f"{image_url}/1/{i}.png", 1),
            ("one-image PNG", 32, lambda i: f"{image_url}/2/{i}.png", 1),
            ("64-image sheet", 8, lambda i: urllib.request.Request(
                f"{base}/v1/generate", sheet.replace(b'"seed": 0', f'"seed": {i}'.encode()),
                {"Content-Type": "application/json"}), 64),
        ]:  # fmt: skip
            load = Load(make, clients, seconds=args.seconds)
            seconds = load.run()
            rate = len(load.latencies) / seconds
            rows.append((name, clients, len(load.latencies), load.errors, rate, rate * images,
                         percentile(load.latencies, 50), percentile(load.latencies, 99)))  # fmt: skip
        rss_at_1000: list[float] = []
        soak = Load(lambda i: f"{image_url}/3/{i}.png", 8, total=args.soak,
                    on_count=lambda done: rss_at_1000.append(rss_mb(server.pid)) if done == 1000 else None)  # fmt: skip
        soak_seconds = soak.run()
        end_rss = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(20)
    print(f"vae-gen serve, {args.model}, {args.seconds:g} s per scenario; in-process generate(64): {in_process:,.0f} images/s")
    print(f"{'scenario':<16}{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>9}{'images/s':>10}{'p50 ms':>8}{'p99 ms':>8}")
    for name, clients, count, errors, rate, image_rate, p50, p99 in rows:
        print(f"{name:<16}{clients:>8}{count:>10}{errors:>8}{rate:>9.1f}{image_rate:>10.0f}{p50:>8.1f}{p99:>8.1f}")
    sheet_rate = rows[-1][5]
    print(f"64-image sheets reach {100 * sheet_rate / in_process:.0f} % of in-process generate")
    print(f"soak: {len(soak.latencies):,} one-image requests at 8 clients in {soak_seconds:.0f} s, {soak.errors} errors; "
          f"server RSS {start_rss:.1f} MB at start, {rss_at_1000[0] if rss_at_1000 else float('nan'):.1f} MB after 1,000, "
          f"{end_rss:.1f} MB after {len(soak.latencies):,}")  # fmt: skip


if __name__ == "__main__":
    main()
