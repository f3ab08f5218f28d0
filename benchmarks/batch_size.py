"""onnxruntime batch size against speed and memory: the evidence for DEFAULT_BATCH_SIZE.

vae_gen.Generator decodes in onnxruntime calls of at most DEFAULT_BATCH_SIZE
images, so this measures the decoder session directly, one call per batch of
exactly B: images/s decoded to uint8 in memory (median of --runs), and the
peak RSS (VmHWM) of a fresh process that decodes 10,000 images that way.

    python benchmarks/batch_size.py [--model NAME] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import vae_gen

sys.path.insert(0, str(Path(__file__).parent))
from compare import images_per_second, median_of, peak_rss_mb, to_uint8

SIZES = (8, 16, 32, 64, 128, 256, 1024)
RSS_IMAGES = 10_000

DECODE_IN_BATCHES = """
import sys
import numpy as np
import onnxruntime
folder, batch, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
session = onnxruntime.InferenceSession(folder + "/decoder.onnx", providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
z = np.random.default_rng(0).standard_normal((count, session.get_inputs()[0].shape[1])).astype(np.float32)
images = np.empty((count, 28, 28), np.uint8)
for lo in range(0, count, batch):
    x = session.run(None, {name: z[lo : lo + batch]})[0]
    images[lo : lo + batch] = np.clip(np.rint(x[..., 0] * 255), 0, 255)
status = open("/proc/self/status").read().split("\\n")
print(int(next(l for l in status if l.startswith("VmHWM:")).split()[1]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure; the median is reported")
    args = parser.parse_args()

    import onnxruntime

    from vae_gen.sampling.generator import DEFAULT_BATCH_SIZE

    folder = vae_gen.resolve_model(args.model).resolve()
    card = vae_gen.ModelCard.load(folder)
    session = onnxruntime.InferenceSession(str(folder / card.decoder.file), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((max(SIZES), card.latent_dim)).astype(np.float32)

    def decode(batch: np.ndarray) -> np.ndarray:
        return to_uint8(session.run(None, {card.decoder.inputs[0]: batch})[0])

    print(f"{card.name}: one onnxruntime call per batch, medians of {args.runs} (vae-gen's default: {DEFAULT_BATCH_SIZE})")
    print(f"{'batch':>6}{'images/s':>12}{f'peak RSS, {RSS_IMAGES:,} images':>28}")
    for size in SIZES:
        speed = median_of(args.runs, lambda: images_per_second(decode, z[:size]))  # noqa: B023
        rss = peak_rss_mb([sys.executable, "-c", DECODE_IN_BATCHES, str(folder), str(size), str(RSS_IMAGES)])
        print(f"{size:>6}{speed:>12,.0f}{rss:>25.1f} MB")


if __name__ == "__main__":
    main()
