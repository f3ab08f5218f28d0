"""A model folder -> a new model folder whose decoder computes in int8.

onnxruntime's static quantization in QDQ form: int8 weights, uint8
activations whose ranges are calibrated on N(0, I) latents (the decoder's
real inputs), clipped at the 99.99th percentile. Of the variants measured by
benchmarks/quantization.py this one lost the fewest nats for its speed:
min-max ranges spend most of the 256 levels on rare extremes.

The encoder's Dense layers (MatMul) get int8 weights too, with dynamic
activation ranges: they hold nearly all of its bytes (the residual
encoder's 6,272 x 512 kernel is 12.8 of its 13.5 MB), so the int8 folder's
ONNX files are 3.6x smaller, and encoding runs no slower. Its
convolutions stay float32.

An int8 graph cannot match Keras within the export's 1e-5, so the new
card's `parity` compares each int8 graph with the float32 one it came from,
its golden outputs are its own (with a tolerance that allows for integer
kernels that round differently on other CPUs), and its test metrics are
its own evaluation. It has no Keras files.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

from vae_gen.core.constants import CALIBRATION_LATENTS, CALIBRATION_SEED, COMPARISON_LATENTS, COMPARISON_SEED
from vae_gen.model.card import FORMAT_VERSION, ModelCard, load_verified, sha256_of
from vae_gen.model.card_parts import GoldenCheck, OnnxFile
from vae_gen.model.engine import CROSS_ENGINE
from vae_gen.output.atomic import atomic_folder
from vae_gen.train.evaluate import evaluate
from vae_gen.training.settings import FASHION_MNIST

from .exporter import check_new_model_folder
from .golden import golden_latents

log = logging.getLogger(__name__)

CALIBRATION_PERCENTILE = 99.99
#: An int8 model's outputs move by up to this between CPUs (another kernel requantizes an activation across a
#: rounding step): its golden check allows it (vae_gen.model.engine.CROSS_ENGINE).
GOLDEN_TOLERANCE = CROSS_ENGINE["int8"].max_abs


class LatentReader:
    """Calibration batches for onnxruntime.quantization: N(0, I) latents."""

    def __init__(self, input_name: str, latent_dim: int, count: int = CALIBRATION_LATENTS, batch: int = 64):
        z = np.random.default_rng(CALIBRATION_SEED).standard_normal((count, latent_dim)).astype(np.float32)
        self.batches = iter([{input_name: z[i : i + batch]} for i in range(0, count, batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize_decoder(
    source: Path, target: Path, input_name: str, latent_dim: int,
    per_channel: bool = False, percentile: float | None = CALIBRATION_PERCENTILE,
) -> None:  # fmt: skip
    """Write the int8 form of decoder SOURCE to TARGET.

    The defaults are what `quantize_model` ships; benchmarks/quantization.py
    also measures per-channel weights and min-max ranges (percentile None).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = target.with_name(f".{target.name}.prepared")
    try:
        # Folds constants and infers shapes, as onnxruntime recommends before quantizing.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(target), LatentReader(input_name, latent_dim),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile,
            extra_options={} if percentile is None else {"CalibPercentile": percentile},
        )  # fmt: skip
    finally:
        prepared.unlink(missing_ok=True)
    onnx.checker.check_model(str(target))


def quantize_encoder(source: Path, target: Path) -> None:
    """Write encoder SOURCE to TARGET with int8 weights in its MatMuls (onnxruntime dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    onnx.checker.check_model(str(target))


def _encoder_difference(int8_file: Path, float32_file: Path, images: np.ndarray, input_name: str) -> np.ndarray:
    """|int8 - float32| of every encoder output (z_mean, z_log_var) on IMAGES, concatenated."""
    outputs = [
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {input_name: images})
        for path in (int8_file, float32_file)
    ]
    return np.concatenate([np.abs(a - b).ravel() for a, b in zip(*outputs, strict=True)])


def _decoder(path: Path, input_name: str):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda z: session.run(None, {input_name: z})[0]


def quantize_model(source_dir: Path, out_dir: Path, name: str | None = None, description: str | None = None) -> ModelCard:
    """Write OUT_DIR: SOURCE_DIR's model with an int8 decoder and int8 encoder weights, scored and carded.

    Returns the new folder's card.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    check_new_model_folder(out_dir, "quantize")
    source = load_verified(source_dir)  # a damaged source is refused before anything is quantized
    z_name = source.decoder.inputs[0]

    with atomic_folder(out_dir) as staging:
        decoder_file = staging / source.decoder.file
        quantize_decoder(source_dir / source.decoder.file, decoder_file, z_name, source.latent_dim)

        z = np.random.default_rng(COMPARISON_SEED).standard_normal((COMPARISON_LATENTS, source.latent_dim))
        z = z.astype(np.float32)
        int8_decode = _decoder(decoder_file, z_name)
        float32_images = _decoder(source_dir / source.decoder.file, z_name)(z)
        difference = np.abs(int8_decode(z) - float32_images)
        golden_z = golden_latents(source.latent_dim)
        golden_images = int8_decode(golden_z).reshape(len(golden_z), -1)
        parity: dict[str, Any] = {
            "reference": f"{source.name} {source.decoder.file} (float32)",
            "latents": COMPARISON_LATENTS,
            "max_abs_diff": float(difference.max()),
            "mean_abs_diff": float(difference.mean()),
        }
        encoder = None
        if source.encoder is not None:
            encoder_file = staging / source.encoder.file
            quantize_encoder(source_dir / source.encoder.file, encoder_file)
            encoder = OnnxFile(source.encoder.file, sha256_of(encoder_file), source.encoder.inputs, source.encoder.outputs)
            # The encoder is compared on the float32 decoder's images: inputs it was trained to see.
            encoder_difference = _encoder_difference(
                encoder_file, source_dir / source.encoder.file, float32_images, source.encoder.inputs[0]
            )
            parity |= {
                "encoder_reference": f"{source.name} {source.encoder.file} (float32)",
                "encoder_max_abs_diff": float(encoder_difference.max()),
                "encoder_mean_abs_diff": float(encoder_difference.mean()),
            }
        card = dataclasses.replace(
            source,
            format_version=FORMAT_VERSION,
            name=name or out_dir.name,
            description=description or f"{source.name} in int8 (decoder: static quantization; encoder: int8 Dense weights)",
            decoder=OnnxFile(source.decoder.file, sha256_of(decoder_file), source.decoder.inputs, source.decoder.outputs),
            encoder=encoder,
            keras_files={},
            test_metrics={},
            parity=parity,
            golden=GoldenCheck(
                latents=tuple(tuple(float(v) for v in row) for row in golden_z),
                images=tuple(tuple(round(float(v), 7) for v in row) for row in golden_images),
                tolerance=GOLDEN_TOLERANCE,
            ),
            extra=source.extra | {
                "quantization": {
                    "source": source.name,
                    "source_decoder_sha256": source.decoder.sha256,
                    "method": "decoder: onnxruntime quantize_static, QDQ, int8 weights per tensor, uint8 activations; "
                              "encoder: quantize_dynamic of the MatMuls, int8 weights",
                    "calibration": f"{CALIBRATION_LATENTS} N(0, I) latents (seed {CALIBRATION_SEED}), "
                                   f"{CALIBRATION_PERCENTILE}th percentile",
                    "onnxruntime": onnxruntime.__version__,
                },
            },
        )  # fmt: skip
        card.save(staging)
        if source.encoder is not None and source.test_metrics.get("data", FASHION_MNIST) == FASHION_MNIST and source.test_metrics:
            # Scored as its source was, so the two compare; `vae-gen evaluate --data` scores any other.
            evaluation = evaluate(staging, FASHION_MNIST)
            card = dataclasses.replace(card, test_metrics=evaluation.to_dict())
            card.save(staging)
    log.info("quantized %s to %s", source.name, out_dir)
    return card
