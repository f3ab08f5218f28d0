"""Ctrl-C or SIGTERM in the middle of a 100,000-image run, then --resume."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DENSE2
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

COUNT = "100000"
#: The issue's bound on how long a run may take to stop.
STOP_SECONDS = 1.0


def digests(folder: Path) -> dict[str, str]:
    files = [*folder.rglob("*.png"), folder / "manifest.jsonl"]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vae_gen",
        "sample",
        "--model",
        DENSE2,
        "-n",
        COUNT,
        "--seed",
        "3",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def interrupt_after(out: Path, files: int, signum: int, workers: str) -> tuple[subprocess.CompletedProcess, float]:
    process = subprocess.Popen(command(out, "--workers", workers), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.exists() and sum(1 for _ in out.rglob("*.png")) >= files):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.02)
    sent = time.monotonic()
    process.send_signal(signum)
    process.wait(timeout=30)
    stopped = time.monotonic() - sent
    return subprocess.CompletedProcess(process.args, process.returncode, "", process.stderr.read()), stopped


@pytest.mark.parametrize("signum, workers", [(signal.SIGTERM, "2"), (signal.SIGINT, "0")])
def test_interrupted_run_stops_fast_keeps_complete_files_and_resumes(tmp_path, signum, workers):
    out = tmp_path / "run"
    result, stopped = interrupt_after(out, 2000, signum, workers)
    assert result.returncode == 130, result.stderr
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert stopped < STOP_SECONDS, stopped
    written = list(out.rglob("*.png"))
    assert 2000 <= len(written) < int(COUNT)
    assert not list(out.rglob("*.tmp"))
    assert not (out / "manifest.jsonl").exists()  # the run is not complete
    for path in written:
        with Image.open(path) as picture:
            picture.load()  # every file present is a whole PNG
    subprocess.run(command(out, "--resume"), check=True)
    reference = tmp_path / "uninterrupted"
    subprocess.run(command(reference), check=True)
    assert digests(out) == digests(reference)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the workers through /proc")
def test_kill_9_of_a_run_leaves_no_png_worker_behind(tmp_path):
    """kill -9 gives the run no chance to stop its PNG workers; they notice it is gone and end themselves."""
    marker = f"vae-gen-orphan-test-{tmp_path.name}"
    environment = {**os.environ, "VAE_GEN_TEST_MARKER": marker}
    process = subprocess.Popen(command(tmp_path / "run", "--workers", "2"), env=environment, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(marked_processes(marker)) < 3:  # the run, the forkserver and its workers
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its workers started"
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not marked_processes(marker), "processes of the killed run are still there"


def marked_processes(marker: str) -> list[int]:
    """The pids whose environment holds `marker` (zombies, already ended, excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environment and state != "Z":
            found.append(int(entry.name))
    return found


def test_sigterm_stops_serve_with_130_and_one_line(tmp_path):
    pytest.importorskip("uvicorn")
    process = subprocess.Popen([sys.executable, "-m", "vae_gen", "serve", "--port", "0"], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    first = process.stderr.readline()  # the server says where it listens once it is about to start
    assert first.startswith("vae-gen serve: ")
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == 130 and rest.startswith("vae-gen serve: interrupted"), rest
