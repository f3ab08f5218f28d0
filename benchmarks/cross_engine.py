"""How far the shipped models' images move between CPU kinds: the measurement behind vae_gen.model.engine.CROSS_ENGINE.

Generates two cases of every shipped model (64 images of seed 0 at T = 1, and
300 of seed 2024 at T = 0.7; a conditional model's image i shows class i mod K)
on this CPU and, through Debian's qemu-user, on emulated CPUs with other
kernel paths of onnxruntime's MLAS (Nehalem: SSE only; Haswell: AVX2 and FMA,
no AVX-512), then prints, per model and case, the largest difference of the
float output, the fraction of uint8 pixels that differ and by how many levels
at most, against the tolerance of the model's precision.

    python benchmarks/cross_engine.py [--cpus Nehalem,Haswell] [--out DIR]

Under emulation each CPU takes 10 to 30 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CASES = {"seed0_n64": (64, 0, 1.0), "seed2024_n300_t0.7": (300, 2024, 0.7)}


def dump(path: Path) -> None:
    """Write every shipped model's float output and uint8 images of both cases to `path` (.npz)."""
    import vae_gen
    from vae_gen.model.engine import engine_fingerprint

    out = {"engine": np.array(json.dumps(engine_fingerprint()))}
    for name in vae_gen.list_models():
        generator = vae_gen.load(name)
        label = "all" if generator.classes else None
        for case, (n, seed, temperature) in CASES.items():
            z = generator.latents(n, seed, temperature=temperature)
            out[f"{name}/{case}/float"] = generator.decode(z, label=label)
            out[f"{name}/{case}/uint8"] = generator.generate(n, seed, temperature=temperature, label=label)
    np.savez(path, **out)


def compare(reference: Path, other: Path) -> list[str]:
    import vae_gen
    from vae_gen.model.engine import CROSS_ENGINE

    a, b = np.load(reference), np.load(other)
    rows = [f"{'model':32} {'case':20} {'max |float diff|':>16} {'pixels differing':>17} {'max levels':>10}  within"]
    for name in vae_gen.list_models():
        tolerance = CROSS_ENGINE[vae_gen.load(name).card.precision]
        for case in CASES:
            floats = np.abs(a[f"{name}/{case}/float"].astype(np.float64) - b[f"{name}/{case}/float"])
            levels = np.abs(a[f"{name}/{case}/uint8"].astype(np.int16) - b[f"{name}/{case}/uint8"])
            moved = np.count_nonzero(levels) / levels.size
            problems = tolerance.violations(
                a[f"{name}/{case}/float"], b[f"{name}/{case}/float"], a[f"{name}/{case}/uint8"], b[f"{name}/{case}/uint8"]
            )
            rows.append(
                f"{name:32} {case:20} {floats.max():16.3g} {moved:17.2e} {int(levels.max()):10d}  "
                f"{'yes' if not problems else 'NO: ' + '; '.join(problems)}"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", default="Nehalem,Haswell", help="qemu CPU models to compare with this CPU")
    parser.add_argument("--out", type=Path, help="keep the .npz files here (default: a temporary folder)")
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)  # the child's job, on one CPU
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
        return 0
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        sys.exit("qemu-x86_64 not found: apt-get install qemu-user")
    folder = args.out or Path(tempfile.mkdtemp(prefix="cross-engine-"))
    folder.mkdir(parents=True, exist_ok=True)
    here = folder / "host.npz"
    subprocess.run([sys.executable, __file__, "--dump", str(here)], check=True)
    from vae_gen.model.engine import describe, engine_fingerprint

    print(f"reference: this machine, {describe(engine_fingerprint())}")
    for cpu in filter(None, args.cpus.split(",")):
        other = folder / f"{cpu}.npz"
        subprocess.run([qemu, "-cpu", cpu, sys.executable, __file__, "--dump", str(other)], check=True,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        print(f"\n{cpu} (emulated): {describe(json.loads(str(np.load(other)['engine'])))}")
        print("\n".join(compare(here, other)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
