"""Quantized variants of a model's decoder: what each costs in quality and gains in speed.

For each variant of decoder.onnx (float32 as exported; float16; int8 with
weights and activations calibrated on N(0, I) latents, per-tensor and
per-channel, activation ranges from min-max or the 99.99th percentile;
int8 weights with dynamic activations) it reports, in one run on this machine:

  parity   max and mean |variant - float32| over 1,000 N(0, I) latents, in pixel units (0..1)
  -ELBO    test -ELBO over the 10,000 test images, the encoder kept float32
  speed    images/s decoded to uint8 at batch 1, 64 and 1024 (medians of --runs), and x float32
  size     the decoder file in kB

A variant is worth shipping only if it is at least SHIP_SPEEDUP faster at
batch 64 and 1024 at a cost of at most SHIP_NATS of test -ELBO; the last
column says which qualify.

Needs the train extra (for the test images):
    python benchmarks/quantization.py [--model NAME] [--runs 5] [--json benchmarks/results/quantization.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import vae_gen
from vae_gen.model.card import sha256_of

sys.path.insert(0, str(Path(__file__).parent))
from compare import BATCHES, images_per_second, median_of

SHIP_SPEEDUP = 1.3
SHIP_NATS = 1.0
PARITY_LATENTS = 1000


def float16_variant(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # keep_io_types: callers still pass float32 latents and get float32 images.
    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))


def dynamic_int8_variant(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_suffix(".prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
    prepared.unlink()


def variant_folder(folder: Path, decoder: Path, work: Path, name: str) -> Path:
    """A copy of the model folder whose decoder.onnx is `decoder`, its checksum updated."""
    target = work / name
    shutil.copytree(folder, target)
    card = vae_gen.ModelCard.load(target)
    shutil.copyfile(decoder, target / card.decoder.file)
    entry = dataclasses.replace(card.decoder, sha256=sha256_of(target / card.decoder.file))
    dataclasses.replace(card, name=f"{card.name}-{name}", decoder=entry).save(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per speed figure; the median is reported")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "quantization.json")
    args = parser.parse_args()

    from vae_gen.core.constants import EVAL_SEED
    from vae_gen.export.quantize import quantize_decoder
    from vae_gen.train.data import load_fashion_mnist, to_float_images
    from vae_gen.train.metrics import neg_elbo

    x_test = to_float_images(load_fashion_mnist(None).test_images)
    folder = vae_gen.resolve_model(args.model).resolve()
    card = vae_gen.ModelCard.load(folder)
    source = folder / card.decoder.file
    z_name = card.decoder.inputs[0]
    work = Path(tempfile.mkdtemp(prefix="vae-gen-quant-"))
    builders = {
        "float32": lambda t: shutil.copyfile(source, t),
        "float16": lambda t: float16_variant(source, t),
        "int8 min-max": lambda t: quantize_decoder(source, t, z_name, card.latent_dim, False, None),
        "int8 min-max per-channel": lambda t: quantize_decoder(source, t, z_name, card.latent_dim, True, None),
        "int8 99.99 % (vae-gen quantize)": lambda t: quantize_decoder(source, t, z_name, card.latent_dim),
        "int8 99.99 % per-channel": lambda t: quantize_decoder(source, t, z_name, card.latent_dim, True, 99.99),
        "int8 dynamic": lambda t: dynamic_int8_variant(source, t),
    }
    z_parity = np.random.default_rng(0).standard_normal((PARITY_LATENTS, card.latent_dim)).astype(np.float32)
    rng = np.random.default_rng(1)
    latents = {b: rng.standard_normal((b, card.latent_dim)).astype(np.float32) for b in BATCHES}

    rows: dict[str, dict] = {}
    reference = None
    for name, build in builders.items():
        slug = name.replace(" ", "-")
        decoder = work / f"{slug}.onnx"
        try:
            build(decoder)
            generator = vae_gen.load(variant_folder(folder, decoder, work, slug))
            images = generator.decode(z_parity)
        except Exception as exc:  # a variant onnxruntime cannot build or run is a result, not a crash
            rows[name] = {"error": str(exc).splitlines()[0]}
            print(f"{name}: failed: {rows[name]['error']}", flush=True)
            continue
        reference = images if reference is None else reference
        speed = {b: median_of(args.runs, lambda g=generator, b=b: images_per_second(g.decode_uint8, latents[b])) for b in BATCHES}
        rows[name] = {
            "parity_max_abs": float(np.abs(images - reference).max()),
            "parity_mean_abs": float(np.abs(images - reference).mean()),
            "neg_elbo": neg_elbo(x_test, generator.encode, generator.decode, seed=EVAL_SEED)["neg_elbo"],
            "images_per_second": speed,
            "decoder_kb": decoder.stat().st_size / 1000,
        }
        print(f"{name}: done", flush=True)

    base = rows["float32"]
    print(f"\n{card.name}: decoder variants, {platform.processor() or platform.machine()}, medians of {args.runs}")
    header = f"{'variant':34}{'max diff':>10}{'mean diff':>10}{'-ELBO':>9}{'d nats':>8}" + "".join(
        f"{f'img/s b{b}':>18}" for b in BATCHES
    )
    print(header + f"{'kB':>8}  ship?")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:34}  failed: {row['error'][:100]}")
            continue
        delta = row["neg_elbo"] - base["neg_elbo"]
        ratios = {b: row["images_per_second"][b] / base["images_per_second"][b] for b in BATCHES}
        row["neg_elbo_change"], row["speedup"] = delta, ratios
        row["ships"] = name != "float32" and delta <= SHIP_NATS and min(ratios[64], ratios[1024]) >= SHIP_SPEEDUP
        speeds = "".join(f"{row['images_per_second'][b]:>10,.0f} (x{ratios[b]:.2f})" for b in BATCHES)
        print(f"{name:34}{row['parity_max_abs']:>10.2e}{row['parity_mean_abs']:>10.2e}{row['neg_elbo']:>9.2f}{delta:>+8.2f}{speeds}"
              f"{row['decoder_kb']:>8.0f}  {'yes' if row['ships'] else 'no'}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "model": card.name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": args.runs,
        "variants": rows,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
