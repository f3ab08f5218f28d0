"""vae-gen's runtime side by side with Keras and LiteRT, on one machine, in one run.

Same decoder (the model folder's decoder.onnx, the decoder.keras it came from,
and that Keras model converted to TFLite), same latents. Every figure is the
median of --runs repetitions, shown with its ratio to vae-gen.

  1. cold start     fresh process until one PNG is on disk
  2. throughput     images/s decoded to uint8 in memory, batch 1, 64, 1024
  3. to disk        10,000 PNG files: vae-gen (all cores, one worker) vs Keras predict + a Pillow loop
  4. peak RSS       10,000 and 100,000 images (VmHWM of the generating process)
  5. install size   a fresh virtual environment holding only what each path needs (--sizes)
  6. machine limit  decoder FLOPs/image x images/s at batch 1024, over numpy's float32 matmul FLOP/s

Needs the train extra and ai-edge-litert:
    pip install ".[train]" ai-edge-litert
    python benchmarks/compare.py [--model NAME] [--runs 5] [--sizes] [--json benchmarks/results/compare.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import vae_gen

BATCHES = (1, 64, 1024)
#: Each throughput measurement decodes for at least this long.
MIN_SECONDS = 1.0
MATMUL_SIZE = 2048
DISK_IMAGES = 10_000
RSS_COUNTS = (10_000, 100_000)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x[..., 0] * 255.0), 0, 255).astype(np.uint8)


def median_of(runs: int, measure) -> float:
    return statistics.median(measure() for _ in range(runs))


# -- the decoders ---------------------------------------------------------------------


def tflite_bytes(decoder, work: Path) -> bytes:
    """The Keras decoder as TFLite, through a SavedModel.

    Keras 3's own export is the reliable route: converting a tf.function that
    calls the model gave NaN outputs here (uninitialized weights frozen in).
    """
    import tensorflow as tf

    decoder.export(str(work / "saved_model"), format="tf_saved_model", verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(str(work / "saved_model")).convert()


class LiteRTDecoder:
    """One LiteRT interpreter per batch size (resizing the input reallocates its tensors)."""

    def __init__(self, model: bytes, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.model, self.threads, self.interpreters = model, threads, {}
        self.Interpreter = Interpreter

    def __call__(self, z: np.ndarray) -> np.ndarray:
        interpreter = self.interpreters.get(len(z))
        if interpreter is None:
            interpreter = self.Interpreter(model_content=self.model, num_threads=self.threads)
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(z.shape))
            interpreter.allocate_tensors()
            self.interpreters[len(z)] = interpreter
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], z)
        interpreter.invoke()
        return to_uint8(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def images_per_second(decode, z: np.ndarray) -> float:
    decode(z)  # warm-up: lazy allocations, graph tracing
    calls, started = 0, time.perf_counter()
    while True:
        decode(z)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return calls * len(z) / elapsed


def matmul_flops(runs: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    b = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    a @ b

    def once() -> float:
        started = time.perf_counter()
        a @ b
        return 2 * MATMUL_SIZE**3 / (time.perf_counter() - started)

    return median_of(max(runs, 5), once)


# -- fresh processes ------------------------------------------------------------------

KERAS_COLD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from PIL import Image
decoder = keras.saving.load_model(sys.argv[1], compile=False)
z = np.random.default_rng(0).standard_normal((1, decoder.inputs[0].shape[-1])).astype("float32")
x = decoder(z, training=False).numpy()
Image.fromarray(np.clip(np.rint(x[0, ..., 0] * 255), 0, 255).astype("uint8")).save(sys.argv[2])
"""

LITERT_COLD = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
interpreter = Interpreter(model_path=sys.argv[1], num_threads=2)
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
z = np.random.default_rng(0).standard_normal(inp["shape"]).astype("float32")
interpreter.set_tensor(inp["index"], z)
interpreter.invoke()
x = interpreter.get_tensor(out["index"])
Image.fromarray(np.clip(np.rint(x[0, ..., 0] * 255), 0, 255).astype("uint8")).save(sys.argv[2])
"""

KERAS_TO_DISK = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from PIL import Image
decoder = keras.saving.load_model(sys.argv[1], compile=False)
count, out = int(sys.argv[2]), sys.argv[3]
z = np.random.default_rng(0).standard_normal((count, decoder.inputs[0].shape[-1])).astype("float32")
images = np.clip(np.rint(decoder.predict(z, batch_size=256, verbose=0)[..., 0] * 255), 0, 255).astype("uint8")
for i, image in enumerate(images):
    Image.fromarray(image).save(os.path.join(out, f"{i:06d}.png"))
"""

KERAS_RSS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
decoder = keras.saving.load_model(sys.argv[1], compile=False)
z = np.random.default_rng(0).standard_normal((int(sys.argv[2]), decoder.inputs[0].shape[-1])).astype("float32")
images = np.clip(np.rint(decoder.predict(z, batch_size=256, verbose=0)[..., 0] * 255), 0, 255).astype("uint8")
np.save(sys.argv[3], images)
status = open("/proc/self/status").read().split("\\n")
print(int(next(l for l in status if l.startswith("VmHWM:")).split()[1]))
"""

VAE_GEN_RSS = """
import sys
from vae_gen.cli.commands import main
assert main(sys.argv[1:]) == 0
status = open("/proc/self/status").read().split("\\n")
print(int(next(l for l in status if l.startswith("VmHWM:")).split()[1]))
"""


def wall_seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def peak_rss_mb(argv: list[str]) -> float:
    result = subprocess.run(argv, check=True, capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def committed_tree(repo: Path, work: Path) -> Path:
    """The repository's committed files (git archive HEAD): what a fresh clone installs.

    Installing the working folder instead can pick up a stale setuptools build/
    folder holding files that were since removed (a dropped model, say).
    """
    target = work / "source"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def venv_size_mb(packages: list[str], work: Path) -> float:
    """Size on disk of a fresh virtual environment with `packages` installed."""
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True, capture_output=True)
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(venv)
    return size / 2**20


# -- the run --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure; the median is reported")
    parser.add_argument("--sizes", action="store_true", help="also build virtual environments to measure install sizes")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "compare.json")
    args = parser.parse_args()

    import keras

    folder = vae_gen.resolve_model(args.model).resolve()
    card = vae_gen.ModelCard.load(folder)
    generator = vae_gen.load(folder)
    keras_decoder = keras.saving.load_model(folder / card.keras_files["decoder"], compile=False)
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="vae-gen-bench-"))
    tflite_path = work / "decoder.tflite"
    tflite_path.write_bytes(tflite_bytes(keras_decoder, work))
    litert = LiteRTDecoder(tflite_path.read_bytes(), threads=cores)
    results: dict = {"model": card.name, "decoder_flops": card.decoder_flops, "cores": cores}

    paths = {
        "vae-gen (onnxruntime)": generator.decode_uint8,
        "Keras decoder(z)": lambda z: to_uint8(keras_decoder(z, training=False).numpy()),
        "Keras predict": lambda z: to_uint8(keras_decoder.predict(z, batch_size=len(z), verbose=0)),
        "LiteRT": litert,
    }
    rng = np.random.default_rng(0)
    latents = {b: rng.standard_normal((b, card.latent_dim)).astype(np.float32) for b in BATCHES}

    # Same latents, same answers: a benchmark of decoders that disagree would be meaningless.
    reference = paths["vae-gen (onnxruntime)"](latents[64])
    agreement = {name: int(np.abs(fn(latents[64]).astype(int) - reference).max()) for name, fn in paths.items()}
    results["max_uint8_difference_vs_vae_gen"] = agreement
    if max(agreement.values()) > 1:
        raise SystemExit(f"the decoders disagree (max uint8 difference per path: {agreement}); not benchmarking")

    print(f"{card.name}: {card.decoder_flops / 1e6:.1f} MFLOP/image, {cores} cores, {args.runs} runs each, medians")
    throughput = {
        name: {b: median_of(args.runs, lambda fn=fn, b=b: images_per_second(fn, latents[b])) for b in BATCHES}
        for name, fn in paths.items()
    }
    results["throughput_images_per_second"] = throughput
    base = throughput["vae-gen (onnxruntime)"]
    print("\n2. throughput in memory, images/s to uint8 (ratio: vae-gen / other)")
    print(f"{'':24}" + "".join(f"{f'batch {b}':>22}" for b in BATCHES))
    for name, row in throughput.items():
        cells = "".join(f"{row[b]:>12,.0f} {f'(x{base[b] / row[b]:.2f})':>9}" for b in BATCHES)
        print(f"{name:24}{cells}")

    flops = matmul_flops(args.runs)
    limit = card.decoder_flops * base[1024] / flops
    results["matmul_flops_per_second"] = flops
    results["percent_of_matmul_limit_at_1024"] = 100 * limit
    print(f"\n6. machine limit: numpy float32 {MATMUL_SIZE}^3 matmul {flops / 1e9:.1f} GFLOP/s; vae-gen at batch 1024 "
          f"does {card.decoder_flops * base[1024] / 1e9:.1f} GFLOP/s = {100 * limit:.1f} % of it")  # fmt: skip

    python = sys.executable
    cold = {
        "vae-gen": median_of(args.runs, lambda: wall_seconds([
            python, "-m", "vae_gen", "sample", "-n", "1", "--model", str(folder), "--overwrite", "--out", str(work / "cold"),
        ])),
        "Keras": median_of(args.runs, lambda: wall_seconds([
            python, "-c", KERAS_COLD, str(folder / card.keras_files["decoder"]), str(work / "k.png"),
        ])),
        "LiteRT": median_of(args.runs, lambda: wall_seconds([python, "-c", LITERT_COLD, str(tflite_path), str(work / "l.png")])),
    }  # fmt: skip
    results["cold_start_seconds"] = cold
    print("\n1. cold start, fresh process to one PNG on disk")
    for name, seconds in cold.items():
        print(f"{name:24}{seconds:>8.3f} s  (x{seconds / cold['vae-gen']:.1f} of vae-gen)")

    def to_disk(argv_for) -> float:
        def once() -> float:
            out = work / "disk"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return wall_seconds(argv_for(out))

        return DISK_IMAGES / median_of(args.runs, once)

    sample = [python, "-m", "vae_gen", "sample", "--quiet", "-n", str(DISK_IMAGES), "--model", str(folder), "--out"]
    disk = {
        f"vae-gen ({cores} workers)": to_disk(lambda out: [*sample, str(out), "--workers", str(cores)]),
        "vae-gen (in-process)": to_disk(lambda out: [*sample, str(out), "--workers", "0"]),
        "Keras predict + Pillow": to_disk(lambda out: [
            python, "-c", KERAS_TO_DISK, str(folder / card.keras_files["decoder"]), str(DISK_IMAGES), str(out),
        ]),
    }  # fmt: skip
    results["to_disk_images_per_second"] = disk
    first = next(iter(disk.values()))
    print(f"\n3. {DISK_IMAGES:,} PNG files, whole job including start-up, images/s")
    for name, rate in disk.items():
        print(f"{name:24}{rate:>8,.0f}  (vae-gen all cores is x{first / rate:.2f})")

    rss = {}
    for count in RSS_COUNTS:
        out = str(work / f"rss-{count}.npy")
        rss[f"vae-gen {count:,}"] = peak_rss_mb(
            [
                python,
                "-c",
                VAE_GEN_RSS,
                "sample",
                "--quiet",
                "-n",
                str(count),
                "--model",
                str(folder),
                "--overwrite",
                "--out",
                out,
            ]
        )
        rss[f"Keras predict {count:,}"] = peak_rss_mb(
            [python, "-c", KERAS_RSS, str(folder / card.keras_files["decoder"]), str(count), out]
        )
    results["peak_rss_mb"] = rss
    print("\n4. peak RSS generating N images into a .npy (VmHWM)")
    for name, mb in rss.items():
        print(f"{name:24}{mb:>8.1f} MB")

    if args.sizes:
        repo = Path(__file__).resolve().parent.parent
        sizes = {
            "vae-gen runtime": venv_size_mb([str(committed_tree(repo, work))], work),
            "TensorFlow + Pillow": venv_size_mb(["tensorflow-cpu", "pillow"], work),
            "LiteRT + Pillow": venv_size_mb(["ai-edge-litert", "pillow"], work),
        }
        results["venv_size_mb"] = sizes
        print("\n5. installed size of a fresh virtual environment")
        for name, mb in sizes.items():
            print(f"{name:24}{mb:>8.0f} MB  (x{mb / sizes['vae-gen runtime']:.1f} of vae-gen)")

    shutil.rmtree(work, ignore_errors=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor()}, {cores} cores",
        "python": platform.python_version(),
        "runs": args.runs,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
