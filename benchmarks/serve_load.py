"""Sustained load on `vae-gen serve`: throughput, latency, and whether the server's memory grows.

Starts `vae-gen serve` in a child process, sends WARMUP requests, notes its
resident memory, then sends REQUESTS more from CLIENTS threads and reports
requests and images per second, latency percentiles, and the resident memory
after (VmRSS from /proc; Linux). Needs the serve extra:

    python benchmarks/serve_load.py [--requests 2000] [--clients 4] [--n 16] [--model fashion-mnist-residual32]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WARMUP = 50


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: dict) -> float:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--n", type=int, default=16, help="images per request")
    parser.add_argument("--model", default="fashion-mnist-residual32")
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vae_gen", "serve", "--port", str(port), "--model", args.model],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        url = f"{base}/v1/generate"
        for i in range(WARMUP):
            post(url, {"n": args.n, "seed": i, "format": "npy"})
        before = rss_mb(server.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            latencies = list(pool.map(lambda i: post(url, {"n": args.n, "seed": i, "format": "npy"}), range(args.requests)))
        seconds = time.perf_counter() - started
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    print(f"vae-gen serve, {args.model}, {args.requests} POST /v1/generate of {args.n} images (npy), {args.clients} clients")
    print(f"{'requests/s':>11} {'images/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'RSS after warm-up':>18} {'RSS after':>10}")
    print(f"{args.requests / seconds:>11.1f} {args.requests * args.n / seconds:>9.0f} {p50 * 1000:>7.1f} {p95 * 1000:>7.1f} "
          f"{before:>15.1f} MB {after:>7.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
