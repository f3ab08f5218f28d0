"""Concurrent callers and processes, and a disk that fills up."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DENSE2

import vae_gen
from vae_gen.cli.commands import main

CALLS = 10_000
THREADS = 8
#: How much RSS may grow from call 1,000 to call 10,000 (allocator noise, not a leak).
RSS_GROWTH_BOUND_MB = 8.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_eight_threads_match_sequential_calls_and_memory_stays_flat():
    generator = vae_gen.load(DENSE2)
    expected = {seed: generator.generate(3, seed=seed) for seed in range(64)}
    mismatches = []
    counter = iter(range(CALLS))
    lock = threading.Lock()
    rss_at: dict[int, float] = {}

    def work() -> None:
        while True:
            with lock:
                call = next(counter, None)
            if call is None:
                return
            seed = call % 64
            if not np.array_equal(generator.generate(3, seed=seed), expected[seed]):
                mismatches.append(call)
            if call in (1_000, CALLS - 1):
                rss_at[call] = rss_mb()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
    assert rss_at[CALLS - 1] - rss_at[1_000] < RSS_GROWTH_BOUND_MB, rss_at


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.png")}


def sample_process(out: Path, count: str, seed: str = "1") -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "vae_gen",
        "sample",
        "--model",
        DENSE2,
        "-n",
        count,
        "--seed",
        seed,
        "--quiet",
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    return subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)


def test_second_process_on_the_same_folder_fails_cleanly(tmp_path):
    out = tmp_path / "shared"
    first = sample_process(out, "100000")
    deadline = time.monotonic() + 60
    while not (out.exists() and any(out.rglob("*.png"))):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    second = subprocess.run(
        [sys.executable, "-m", "vae_gen", "sample", "--model", DENSE2, "-n", "100000", "--seed", "1", "--quiet",
         "--out", str(out), "--resume"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert "another vae-gen process is writing the same images" in second.stderr
    assert first.poll() is None  # the first run goes on undisturbed
    first.terminate()
    assert first.wait(timeout=30) == 130


def test_processes_on_different_folders_do_not_interfere(tmp_path):
    runs = [sample_process(tmp_path / f"out{k}", "3000", seed="4") for k in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    assert (
        main(["sample", "--quiet", "--model", DENSE2, "-n", "3000", "--seed", "4", "--out", str(tmp_path / "alone")])
        == 0
    )
    assert digests(tmp_path / "out0") == digests(tmp_path / "out1") == digests(tmp_path / "alone")


def test_full_disk_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    from PIL import Image

    real_write = os.write
    pngs_written = []

    def write_until_full(fd, data):
        # The 41st PNG gets half its bytes onto the disk, then the disk is full.
        if bytes(data[:4]) == b"\x89PNG":
            if len(pngs_written) >= 40:
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, "No space left on device")
            pngs_written.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_until_full)
    out = tmp_path / "out"
    assert main(["sample", "--quiet", "-n", "100", "--workers", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert len(list(out.glob("*.png"))) == 40
    assert not list(out.glob("*.tmp"))
    for path in out.glob("*.png"):
        with Image.open(path) as picture:
            picture.load()


def test_full_disk_while_writing_an_array_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "images.npy"
    out.write_bytes(b"old results")
    import vae_gen.output.array_file as array_file

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(array_file, "_write_npy", full)
    assert main(["sample", "--quiet", "-n", "10", "--out", str(out), "--overwrite"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"old results"
    assert [p.name for p in tmp_path.iterdir()] == ["images.npy"]


def test_unwritable_output_folder(tmp_path, monkeypatch, capsys):
    import os

    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if str(path) == str(tmp_path / "ro") else real_access(path, mode)
    )
    (tmp_path / "ro").mkdir()
    assert main(["sample", "--quiet", "-n", "3", "--out", str(tmp_path / "ro")]) == 2
    assert "not writable" in capsys.readouterr().err
