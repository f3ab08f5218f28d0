"""Keras models -> model folder, only if the parity gate passes.

Three ways in, one way out:
- `export_run`: a run folder written by `vae-gen train`;
- `export_files`: a user's own .keras files (`vae-gen export --decoder ...`);
- `export_keras`: in-memory keras.Model objects, from a notebook.
The folder is built under a temporary name beside its destination and
renamed at the very end, so a failed export leaves nothing behind and a
model folder that exists is always complete and parity-checked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from vae_gen.core.constants import PARITY_TOLERANCE
from vae_gen.errors import OutputError
from vae_gen.model.card import FORMAT_VERSION, ModelCard, sha256_of
from vae_gen.model.card_parts import Conditioning, GoldenCheck, OnnxFile
from vae_gen.output.atomic import atomic_folder
from vae_gen.train.datasets import load_dataset
from vae_gen.train.evaluate import evaluate
from vae_gen.training.run_folder import INCOMPLETE_FILE
from vae_gen.training.settings import FASHION_MNIST, TrainSettings

from .code_layers import refuse_code_layers, refuse_unsaved_names
from .convert import OPSET, ExportError, to_onnx
from .flops import model_flops
from .golden import golden_labels, golden_latents
from .keras_vae import KerasVae, inspect_vae
from .parity import check_parity, load_custom_objects, load_keras
from .posterior_outputs import check_fused_order

log = logging.getLogger(__name__)

DECODER_FILE, ENCODER_FILE = "decoder.onnx", "encoder.onnx"
KERAS_FILES = {"decoder": "decoder.keras", "encoder": "encoder.keras"}
ENCODER_OUTPUTS = ("z_mean", "z_log_var")
#: The second input of a conditional model's graphs.
LABEL_INPUT = "label"


def check_class_names(names: Any, classes: int, what: str) -> tuple[str, ...]:
    """The class names of a conditional model: as many as its label has columns, different and non-empty."""
    names = tuple(names or ())
    if not classes:
        if names:
            raise ExportError(f"{what}: class names given ({', '.join(names)}), but the decoder takes no label")
        return ()
    if len(names) != classes:
        raise ExportError(
            f"{what}: the decoder's label has {classes} classes, but {len(names)} class names were given"
            + ("" if names else "; name them in label order with --classes NAME,NAME,... or --classes FILE")
        )
    if any(not isinstance(n, str) or not n.strip() for n in names) or len(set(names)) != len(names):
        raise ExportError(f"{what}: class names must be different and non-empty, got {list(names)}")
    return names


def _session(path: Path) -> onnxruntime.InferenceSession:
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are untyped; any of them means the conversion is unusable
        raise ExportError(f"the converted {path.stem} does not load in onnxruntime ({str(exc).splitlines()[0]})") from None


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


def export_run(
    run_dir: Path, out_dir: Path, name: str | None = None, description: str = "", data_dir: Path | None = None
) -> ModelCard:
    """Export RUN_DIR (written by `vae-gen train`) to the new model folder OUT_DIR, scored on the run's test
    images; returns its card. data_dir: where Fashion-MNIST's files are, if not found by themselves."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    check_new_model_folder(out_dir, "export")
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir}: not a folder; give a run folder written by `vae-gen train`, or --decoder FILE.keras")
    if (run_dir / INCOMPLETE_FILE).exists():
        raise ExportError(f"{run_dir}: its training has not finished; continue it with vae-gen train --resume {run_dir}")
    settings = TrainSettings.from_record(_read_json(run_dir / "settings.json"), str(run_dir / "settings.json"))
    summary = _read_json(run_dir / "metrics.json")
    for role, file in KERAS_FILES.items():
        if not (run_dir / file).is_file():
            raise ExportError(f"{run_dir / file}: missing; the run folder needs its Keras {role}")
    vae = inspect_vae(
        load_keras(run_dir / KERAS_FILES["decoder"]), load_keras(run_dir / KERAS_FILES["encoder"]),
        decoder_name=str(run_dir / KERAS_FILES["decoder"]), encoder_name=str(run_dir / KERAS_FILES["encoder"]),
    )  # fmt: skip

    dataset_record = summary.get("dataset", summary.get("data", {}))  # "data" before it was a setting
    class_names = check_class_names(dataset_record.get("class_names") if vae.classes else (), vae.classes, str(run_dir))

    def score(staging: Path) -> dict[str, Any]:
        if settings.data == FASHION_MNIST:
            return evaluate(staging, FASHION_MNIST, data_dir=data_dir, test_limit=settings.test_limit).to_dict()
        dataset = load_dataset(settings)
        recorded = summary.get("dataset", {}).get("test_files_sha256")
        if recorded and recorded != dataset.test_files:
            raise ExportError(
                f"{settings.data}: its files changed since {run_dir} was trained, so its held-out test images are not "
                "the run's; score the model with vae-gen evaluate --data instead, or export your own way with --decoder"
            )
        return evaluate(
            staging, f"{dataset.source}: {dataset.test_split}", images=dataset.test_images, labels=dataset.test_labels
        ).to_dict()

    return _write_model_folder(
        vae, out_dir,
        name=name or out_dir.name, description=description, architecture=settings.arch,
        origin={"kind": "trained"}, class_names=class_names,
        training=settings.to_dict() | {
            "dataset": dataset_record,
            "train_seconds": summary.get("train_seconds"),
            "best_epoch": summary.get("best_epoch"),
            "keras_test_metrics": summary.get("test_metrics", {}),
        },
        keras_sources={role: run_dir / file for role, file in KERAS_FILES.items()},
        score=score,
    )  # fmt: skip


def export_files(
    decoder: Path,
    out_dir: Path,
    *,
    encoder: Path | None = None,
    custom_objects: Path | None = None,
    unsafe: bool = False,
    **options: Any,
) -> ModelCard:
    """Export a user's own .keras files (a decoder, and optionally its encoder); see `export_keras` for options.

    `custom_objects` is a Python file defining (and ideally registering) the
    custom layers the models use; the models still load with safe_mode=True,
    unless `unsafe` (the CLI's --trust-code): then Lambda layers' code runs.
    """
    out_dir = Path(out_dir)
    check_new_model_folder(out_dir, "export")
    objects = load_custom_objects(custom_objects) if custom_objects is not None else None
    decoder_model = load_keras(decoder, objects, unsafe=unsafe)
    encoder_model = load_keras(encoder, objects, unsafe=unsafe) if encoder is not None else None
    sources = {"decoder": Path(decoder)} | ({"encoder": Path(encoder)} if encoder is not None else {})
    return export_keras(
        decoder_model, out_dir, encoder=encoder_model, keras_sources=sources,
        decoder_name=str(decoder), encoder_name=str(encoder), unsafe=unsafe, **options,
    )  # fmt: skip


def export_keras(
    decoder: keras.Model,
    out_dir: Path,
    *,
    encoder: keras.Model | None = None,
    name: str | None = None,
    description: str = "",
    image_shape: tuple[int, int, int] | None = None,
    value_range: tuple[float, float] | None = None,
    encoder_outputs: tuple[int, int] | str | None = None,
    decoder_output: str | None = None,
    data: str | None = None,
    data_dir: Path | None = None,
    classes: Sequence[str] | None = None,
    unsafe: bool = False,
    keras_sources: dict[str, Path] | None = None,
    decoder_name: str = "the decoder",
    encoder_name: str = "the encoder",
) -> ModelCard:
    """Export a Keras VAE that vae-gen did not train to the new model folder OUT_DIR; returns its card.

    decoder: one input z [batch, latent]; output [batch, H, W], [batch, H, W, C]
        or flat [batch, H*W*C] (then give image_shape); C is 1 or 3.
        A conditional decoder takes z and a label [batch, K] (one-hot or class
        weights), its encoder the images and the label; then `classes` names
        the K classes in label order.
        A decoder with one input concat(z, label) [batch, latent + K] is
        conditional too, when `classes` names the K classes.
    encoder: optional; input an image batch (with a conditional decoder: and
        the label, as a second input or tiled over the image as K channels
        after its own); outputs [z_mean, z_log_var] or [z_mean, z_log_var, z]
        (z is dropped), or one fused [batch, 2 * latent]. Which is which: by
        the output layers' names where they say it, else by position;
        encoder_outputs (positions of z_mean and z_log_var, or "fused" /
        "fused-log-var-first") overrides. With data, a fused output's order
        is checked on it.
    value_range: the decoder's output range, (0, 1) or (-1, 1); taken from its
        output activation when that is sigmoid or tanh.
    decoder_output: "logits" for a decoder whose loss applied the sigmoid:
        the exported graph applies it.
    unsafe: the models hold Lambda layers (Python code saved with the model);
        recorded in the card, so that `vae-gen parity` asks for --trust-code.
    data: "fashion-mnist" or a folder of images to score the model on (it
        needs an encoder and outputs in [0, 1]); None: no test metrics.
    The ONNX graphs always speak the runtime's contract: z -> image [batch, H,
    W, C]; image -> z_mean, z_log_var. The parity gate compares them with
    these very models before the folder appears.
    """
    out_dir = Path(out_dir)
    check_new_model_folder(out_dir, "export")
    for model, model_name in ((decoder, decoder_name), (encoder, encoder_name)):
        (refuse_unsaved_names if unsafe else refuse_code_layers)(model, model_name)
    vae = inspect_vae(
        decoder, encoder, image_shape=image_shape, value_range=value_range, encoder_outputs=encoder_outputs,
        decoder_output=decoder_output, classes=len(classes or ()), decoder_name=decoder_name, encoder_name=encoder_name,
    )  # fmt: skip
    class_names = check_class_names(classes, vae.classes, decoder_name)
    score = None
    if data is not None:
        if encoder is None:
            raise ExportError(f"data {data}: scoring a model needs its encoder; give the encoder too, or no data")
        if vae.value_range != (0.0, 1.0):
            raise ExportError(f"data {data}: the -ELBO is scored for outputs in [0, 1]; this decoder's are in "
                              f"[{vae.value_range[0]:g}, {vae.value_range[1]:g}]; export without data")  # fmt: skip
        if vae.fused is not None:
            check_fused_order(vae, data, data_dir, class_names, encoder_name)
        score = lambda staging: evaluate(staging, data, data_dir=data_dir).to_dict()  # noqa: E731
    sources = keras_sources or {}
    origin: dict[str, Any] = {"kind": "keras", "decoder": sources.get("decoder", Path(KERAS_FILES["decoder"])).name}
    if encoder is not None:
        encoder_file = sources.get("encoder", Path(KERAS_FILES["encoder"])).name
        origin |= {"encoder": encoder_file, "encoder_outputs": vae.fused or list(vae.encoder_outputs)}
    origin |= vae.origin_shapes() | ({"trust_code": True} if unsafe else {})
    return _write_model_folder(
        vae, out_dir, name=name or out_dir.name, description=description, architecture="keras",
        origin=origin, class_names=class_names, training={}, keras_sources=sources, score=score,
    )  # fmt: skip


def _write_model_folder(
    vae: KerasVae,
    out_dir: Path,
    *,
    name: str,
    description: str,
    architecture: str,
    origin: dict[str, Any],
    class_names: tuple[str, ...],
    training: dict[str, Any],
    keras_sources: dict[str, Path],
    score: Callable[[Path], dict[str, Any]] | None,
) -> ModelCard:
    """Convert, gate on parity, write golden checks and the card, score: all in staging, renamed at the end."""
    label = ((LABEL_INPUT, (vae.classes,)),) if vae.classes else ()
    decoder_inputs, encoder_inputs = (("z", (vae.latent_dim,)), *label), (("image", vae.image_shape), *label)
    with atomic_folder(out_dir) as staging:
        onnx.save(to_onnx(_decoder_call(vae), decoder_inputs, ["image"]), staging / DECODER_FILE)
        decoder_session = _session(staging / DECODER_FILE)
        encoder_entry, onnx_encode = None, None
        if vae.encoder is not None:
            onnx.save(to_onnx(_encoder_call(vae), encoder_inputs, list(ENCODER_OUTPUTS)), staging / ENCODER_FILE)
            encoder_session = _session(staging / ENCODER_FILE)
            encoder_entry = OnnxFile(
                ENCODER_FILE, sha256_of(staging / ENCODER_FILE), tuple(n for n, _ in encoder_inputs), ENCODER_OUTPUTS
            )
            onnx_encode = lambda x, y=None: _run(encoder_session, x, y)  # noqa: E731

        report = check_parity(vae, lambda z, y=None: _run(decoder_session, z, y), onnx_encode)
        log.info("%s", report.summary())
        keras_files = {}
        for role, model in (("decoder", vae.decoder), ("encoder", vae.encoder)):
            if model is None:
                continue
            keras_files[role] = KERAS_FILES[role]
            if role in keras_sources:
                shutil.copy2(keras_sources[role], staging / KERAS_FILES[role])  # the user's file, byte for byte
            else:
                model.save(staging / KERAS_FILES[role])

        z = golden_latents(vae.latent_dim)
        labels = golden_labels(vae.classes) if vae.classes else None
        golden_images = _run(decoder_session, z, labels)["image"].reshape(len(z), -1)
        card = ModelCard(
            format_version=FORMAT_VERSION,
            name=name,
            description=description,
            architecture=architecture,
            latent_dim=vae.latent_dim,
            image_shape=vae.image_shape,
            value_range=vae.value_range,
            opset=OPSET,
            decoder_flops=model_flops(vae.decoder),
            decoder=OnnxFile(DECODER_FILE, sha256_of(staging / DECODER_FILE), tuple(n for n, _ in decoder_inputs), ("image",)),
            encoder=encoder_entry,
            keras_files=keras_files,
            versions={
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "tf2onnx": tf2onnx.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            training=training,
            test_metrics={},
            parity=report.to_dict(),
            golden=GoldenCheck(
                latents=tuple(tuple(float(v) for v in row) for row in z),
                images=tuple(tuple(round(float(v), 7) for v in row) for row in golden_images),
                tolerance=PARITY_TOLERANCE,
                labels=() if labels is None else tuple(tuple(float(v) for v in row) for row in labels),
            ),
            origin=origin,
            conditioning=Conditioning(LABEL_INPUT, class_names) if class_names else None,
        )
        card.save(staging)
        if score is not None:
            # Score the staged ONNX files as users will run them, and record it. `vae-gen evaluate` reproduces it on
            # Fashion-MNIST or a folder's test/; a random held-out split is re-drawn only by exporting the run.
            card = dataclasses.replace(card, test_metrics=score(staging))
            card.save(staging)
    log.info("exported %s to %s", card.name, out_dir)
    return card


def _decoder_call(vae: KerasVae) -> Callable[..., list[tf.Tensor]]:
    """The user's decoder on z (and the label, as the decoder takes it), its output made images (the sigmoid of
    logits) and reshaped to [batch, H, W, C] when it is not already."""
    target = [-1, *vae.image_shape]
    reshape = vae.decoder_output_shape != vae.image_shape

    def call(z: tf.Tensor, label: tf.Tensor | None = None) -> list[tf.Tensor]:
        images = vae.decoded_images(vae.decoder(vae.decoder_inputs(z, label), training=False))
        return [tf.reshape(images, target) if reshape else images]

    return call


def _encoder_call(vae: KerasVae) -> Callable[..., list[tf.Tensor]]:
    """The user's encoder on [batch, H, W, C] images (reshaped to its own input, the label tiled over them where
    it takes it so) and the label, keeping z_mean and z_log_var (the halves of a fused output)."""
    assert vae.encoder is not None
    encoder = vae.encoder

    def call(x: tf.Tensor, label: tf.Tensor | None = None) -> list[tf.Tensor]:
        return list(vae.posterior(encoder(vae.encoder_inputs(x, label), training=False)))

    return call


def _run(session: onnxruntime.InferenceSession, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run a graph on x (and the label rows of a conditional model's second input)."""
    names = [o.name for o in session.get_outputs()]
    inputs = [i.name for i in session.get_inputs()]
    feed = {inputs[0]: x} if labels is None else {inputs[0]: x, inputs[1]: labels}
    return dict(zip(names, session.run(names, feed), strict=True))
