"""Training run folder -> model folder, only if the parity gate passes.

The folder is built under a temporary name beside its destination and
renamed at the very end, so a failed export leaves nothing behind and a
model folder that exists is always complete and parity-checked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from vae_gen.atomic import atomic_folder
from vae_gen.constants import GOLDEN_SEED, PARITY_TOLERANCE
from vae_gen.errors import OutputError
from vae_gen.model_card import (
    FORMAT_VERSION,
    GoldenCheck,
    ModelCard,
    OnnxFile,
    sha256_of,
)
from vae_gen.train.evaluate import evaluate

from .convert import OPSET, ExportError, to_onnx
from .flops import model_flops
from .parity import check_parity, load_keras

log = logging.getLogger(__name__)

DECODER_FILE, ENCODER_FILE = "decoder.onnx", "encoder.onnx"
KERAS_FILES = {"decoder": "decoder.keras", "encoder": "encoder.keras"}
ENCODER_OUTPUTS = ("z_mean", "z_log_var")


def golden_latents(latent_dim: int) -> np.ndarray:
    rng = np.random.default_rng(GOLDEN_SEED)
    return np.concatenate([
        np.zeros((1, latent_dim)),
        rng.standard_normal((2, latent_dim)),
        np.full((1, latent_dim), 3.0),
    ]).astype(np.float32)  # fmt: skip


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: missing; is this a folder written by `vae-gen train`?") from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from None


def check_new_model_folder(out_dir: Path, command: str) -> None:
    """OUT_DIR must not exist yet, and its parent must: a model folder is only ever written whole and new."""
    if out_dir.exists():
        raise OutputError(f"{out_dir}: already exists; {command} writes a new model folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"{out_dir.parent}: folder does not exist")


def export_run(run_dir: Path, out_dir: Path, name: str | None = None, description: str = "") -> ModelCard:
    """Export RUN_DIR's encoder and decoder to the new model folder OUT_DIR; returns its card."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    check_new_model_folder(out_dir, "export")
    settings = _read_json(run_dir / "settings.json")
    summary = _read_json(run_dir / "metrics.json")
    for role, file in KERAS_FILES.items():
        if not (run_dir / file).is_file():
            raise ExportError(f"{run_dir / file}: missing; the run folder needs its Keras {role}")
    decoder = load_keras(run_dir / KERAS_FILES["decoder"])
    encoder = load_keras(run_dir / KERAS_FILES["encoder"])
    latent_dim = int(decoder.inputs[0].shape[-1])
    image_shape = tuple(int(d) for d in decoder.outputs[0].shape[1:])

    with atomic_folder(out_dir) as staging:
        onnx.save(to_onnx(decoder, "z", (latent_dim,), ["image"]), staging / DECODER_FILE)
        onnx.save(to_onnx(encoder, "image", image_shape, list(ENCODER_OUTPUTS)), staging / ENCODER_FILE)
        decoder_session, encoder_session = _session(staging / DECODER_FILE), _session(staging / ENCODER_FILE)

        def run(session, x):
            names = [o.name for o in session.get_outputs()]
            return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x}), strict=True))

        report = check_parity(
            decoder, encoder, lambda z: run(decoder_session, z), lambda x: run(encoder_session, x), latent_dim
        )
        log.info("%s", report.summary())
        for file in KERAS_FILES.values():
            shutil.copy2(run_dir / file, staging / file)

        z = golden_latents(latent_dim)
        golden_images = run(decoder_session, z)["image"].reshape(len(z), -1)
        card = ModelCard(
            format_version=FORMAT_VERSION,
            name=name or out_dir.name,
            description=description,
            architecture=settings["arch"],
            latent_dim=latent_dim,
            image_shape=image_shape,  # type: ignore[arg-type]
            value_range=(0.0, 1.0),
            opset=OPSET,
            decoder_flops=model_flops(decoder),
            decoder=OnnxFile(DECODER_FILE, sha256_of(staging / DECODER_FILE), ("z",), ("image",)),
            encoder=OnnxFile(ENCODER_FILE, sha256_of(staging / ENCODER_FILE), ("image",), ENCODER_OUTPUTS),
            keras_files=dict(KERAS_FILES),
            versions={
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "tf2onnx": tf2onnx.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            training=settings | {
                "data": summary.get("data", {}),
                "train_seconds": summary.get("train_seconds"),
                "best_epoch": summary.get("best_epoch"),
                "keras_test_metrics": summary["test_metrics"],
            },
            test_metrics=summary["test_metrics"],
            parity=report.to_dict(),
            golden=GoldenCheck(
                latents=tuple(tuple(float(v) for v in row) for row in z),
                images=tuple(tuple(round(float(v), 7) for v in row) for row in golden_images),
                tolerance=PARITY_TOLERANCE,
            ),
        )
        card.save(staging)
        # Score the staged ONNX files as users will run them, and record it: `vae-gen evaluate` reproduces it.
        evaluation = evaluate(staging, test_limit=settings.get("test_limit"))
        card = dataclasses.replace(card, test_metrics=evaluation.to_dict())
        card.save(staging)
    log.info("exported %s to %s", card.name, out_dir)
    return card
