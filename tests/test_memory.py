"""Memory stays bounded whatever the count: streamed batches, never the whole run in memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import DENSE2

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")

# VmHWM is the peak resident size of this process's own address space. Not
# getrusage's ru_maxrss: that survives exec, so a child forked from a large
# pytest process would report the parent's peak.
CHILD = (
    "import json, sys\n"
    "from vae_gen.cli.commands import main\n"
    "rc = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read().split('\\n')\n"
    "peak_kb = int(next(line for line in status if line.startswith('VmHWM:')).split()[1])\n"
    "print(json.dumps({'rc': rc, 'peak_kb': peak_kb}))\n"
)
#: Peak RSS may grow this much from 10,000 to 200,000 images (page-cache noise, allocator slack).
FLAT_TOLERANCE = 0.10


def peak_rss_mb(*argv: str) -> float:
    result = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0, result.stderr
    return report["peak_kb"] / 1024


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_peak_memory_is_flat_from_10_000_to_200_000_images(tmp_path, suffix):
    small = peak_rss_mb("sample", "--model", DENSE2, "--quiet", "-n", "10000", "--out", str(tmp_path / f"small{suffix}"))
    large = peak_rss_mb("sample", "--model", DENSE2, "--quiet", "-n", "200000", "--out", str(tmp_path / f"large{suffix}"))
    # 200,000 images are 157 MB of pixels: holding them would show.
    assert large <= small * (1 + FLAT_TOLERANCE), (small, large)
    assert large < 150, large
