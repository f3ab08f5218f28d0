"""Start-up of the runtime, in fresh processes: what a desktop app pays to embed vae-gen.

Measures, as the median over --runs fresh interpreters:
  import     `import vae_gen` (perf_counter around the import; also -X importtime's figure)
  first img  from the end of the import to the first uint8 image in memory (load + decode 1)
  first png  from the end of the import to the first PNG on disk
Targets (issue 4): import <= 150 ms, first image <= 300 ms after the import.

    python benchmarks/startup.py [--runs 9] [--model NAME] [--json benchmarks/results/startup.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

CHILD = r"""
import json, os, sys, tempfile, time
t0 = time.perf_counter()
import vae_gen
t1 = time.perf_counter()
generator = vae_gen.load(sys.argv[1] if sys.argv[1] != "-" else None)
image = generator.generate(1, seed=0)
t2 = time.perf_counter()
from PIL import Image
with tempfile.TemporaryDirectory() as folder:
    Image.fromarray(image[0]).save(os.path.join(folder, "000000.png"))
    t3 = time.perf_counter()
print(json.dumps({"import_ms": 1e3 * (t1 - t0), "first_image_ms": 1e3 * (t2 - t1), "first_png_ms": 1e3 * (t3 - t1)}))
"""

TARGETS = {"import_ms": 150.0, "first_image_ms": 300.0}


def importtime_ms() -> float:
    """`python -X importtime -c 'import vae_gen'`: the cumulative microseconds of vae_gen, in ms."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import vae_gen"], capture_output=True, text=True)
    line = [ln for ln in result.stderr.splitlines() if ln.rstrip().endswith("| vae_gen")][-1]
    return int(line.split("|")[1]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--model", default="-", help="model name or folder (default: the default model)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "startup.json")
    args = parser.parse_args()

    samples = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD, args.model], capture_output=True, text=True, check=True)
        samples.append(json.loads(out.stdout))
    importtime = [importtime_ms() for _ in range(args.runs)]

    rows = {key: [s[key] for s in samples] for key in samples[0]}
    rows["importtime_ms"] = importtime
    print(
        f"vae-gen start-up, {args.runs} fresh processes, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print(f"{'measure':<32}{'median ms':>10}{'min':>8}{'max':>8}{'target':>8}")
    labels = {
        "import_ms": "import vae_gen",
        "importtime_ms": "import vae_gen (-X importtime)",
        "first_image_ms": "first image after import",
        "first_png_ms": "first PNG after import",
    }
    summary = {}
    for key, label in labels.items():
        values = rows[key]
        target = TARGETS.get(key)
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values), "target": target}
        target_text = f"{target:.0f}" if target else "-"
        print(f"{label:<32}{statistics.median(values):>10.1f}{min(values):>8.1f}{max(values):>8.1f}{target_text:>8}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "runs": args.runs,
        "model": args.model,
        "results": summary,
        "samples": samples,
    }
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
