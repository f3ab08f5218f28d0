"""Sustained load on `vae-gen serve` over loopback: throughput, latency, errors, and whether its memory grows.

Starts `vae-gen serve` in a child process and drives it, each scenario for
--seconds (bounded: it stops by itself):
- one-image PNGs (GET /v1/models/M/images/SEED/I.png, I counting up, as a page of
  thumbnails asks) at 1 and 32 clients;
- 64-image contact sheets (POST /v1/generate, format png) at 8 clients, against
  the in-process `Generator.generate` throughput of the same model;
then a soak of --soak one-image requests at 8 clients, with the server's
resident memory (VmRSS, Linux) after the first 1,000 and at the end; then a
mixed scenario: 64 clients at once sending valid one-image requests, bad
requests (malformed JSON, out-of-range values, unknown models) and uploads of
a 16-megapixel picture to /v1/reconstruct, while one more client times /healthz
every 20 ms: answers by status, /healthz p50/p99 and the server's peak RSS.
Needs the serve extra:

    python benchmarks/serve_load.py [--seconds 10] [--soak 100000] [--model fashion-mnist-residual32]
        [--only mixed]
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
import urllib.error
import urllib.request
from collections import Counter
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


def status_of(request) -> int:
    """The HTTP status of one request (0: no answer)."""
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except OSError:
        return 0


def large_picture_upload(url: str) -> urllib.request.Request:
    """A multipart upload of a 4,000 x 4,000 grayscale PNG (16 MP, under the 25 MP bound; small on the wire,
    costly to decode)."""
    import io

    from PIL import Image

    ramp = np.add.outer(np.arange(4000), np.arange(4000)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    boundary = "vaegenbenchmark"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def mixed_scenario(base: str, model: str, seconds: float, pid: int) -> dict:
    """64 clients of four kinds at once (valid, bad JSON, bad values, large uploads) and a /healthz prober."""
    json_headers = {"Content-Type": "application/json"}
    upload = large_picture_upload(f"{base}/v1/reconstruct")
    kinds = [
        lambda i: f"{base}/v1/models/{model}/images/4/{i}.png",
        lambda i: urllib.request.Request(f"{base}/v1/generate", b'{"n": 4, "seed": ', json_headers),
        lambda i: urllib.request.Request(f"{base}/v1/generate", json.dumps(
            [{"n": -1}, {"n": 2, "temperature": "hot"}, {"model": "nope"}, {"n": 10**9}][i % 4]).encode(), json_headers),
        lambda i: upload,
    ]  # fmt: skip
    statuses: Counter[tuple[str, int]] = Counter()
    names = ["valid", "malformed JSON", "bad values", "16 MP upload"]
    health: list[float] = []
    peak_rss = rss_mb(pid)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(kind: int) -> None:
        for i in itertools.count():
            if time.perf_counter() >= deadline:
                return
            status = status_of(kinds[kind](i))
            with lock:
                statuses[(names[kind], status)] += 1

    def prober() -> None:
        nonlocal peak_rss
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status_of(f"{base}/healthz")
            health.append(time.perf_counter() - started)
            peak_rss = max(peak_rss, rss_mb(pid))
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(n % 4,)) for n in range(64)] + [threading.Thread(target=prober)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "health": health, "peak_rss": peak_rss}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each timed scenario")
    parser.add_argument("--soak", type=int, default=100_000, help="one-image requests of the memory soak")
    parser.add_argument("--model", default="fashion-mnist-residual32")
    parser.add_argument("--only", choices=["mixed"], help="run only the mixed scenario")
    args = parser.parse_args()
    if args.only == "mixed":
        return run_mixed_only(args)

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
        mixed = mixed_scenario(base, args.model, args.seconds, server.pid)
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
    print_mixed(mixed, args.seconds)


def print_mixed(mixed: dict, seconds: float) -> None:
    print(f"mixed, 64 clients for {seconds:g} s (valid, malformed JSON, bad values, 16 MP uploads; 16 clients each):")
    print(f"{'requests':<16}{'status':>8}{'answers':>9}")
    for (name, status), count in sorted(mixed["statuses"].items()):
        print(f"{name:<16}{status or 'none':>8}{count:>9}")
    health = mixed["health"]
    print(f"/healthz every 20 ms: {len(health)} answers, p50 {percentile(health, 50):.1f} ms, "
          f"p99 {percentile(health, 99):.1f} ms; server peak RSS {mixed['peak_rss']:.0f} MB")  # fmt: skip


def run_mixed_only(args: argparse.Namespace) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vae_gen", "serve", "--port", str(port), "--model", args.model],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if status_of(f"{base}/readyz") == 200:
                break
            time.sleep(0.1)
        mixed = mixed_scenario(base, args.model, args.seconds, server.pid)
    finally:
        server.terminate()
        server.wait(20)
    print_mixed(mixed, args.seconds)


if __name__ == "__main__":
    main()
