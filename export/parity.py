"""The parity gate: Keras and onnxruntime must agree before a model ships.

Checked in order, each failure a ParityError that says what and by how much:
output names, then shapes, then values within PARITY_TOLERANCE, at several
batch sizes and on latents far outside the prior (|z| up to FAR_LATENT).
A conditional model is checked with its label: one-hot rows of every class
and blends of random class weights, on every batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from vae_gen.core.constants import PARITY_SEED

from .code_layers import REWRITE, refuse_unsaved_names
from .convert import ExportError
from .keras_vae import KerasVae, check_decoded_range, inspect_vae

# The gate's rules (names, shapes, values within the tolerance; the latents) are TensorFlow-free, in parity_checks;
# re-exported here.
from .parity_checks import Outputs as Outputs
from .parity_checks import ParityError as ParityError
from .parity_checks import ParityReport as ParityReport
from .parity_checks import compare as compare
from .parity_checks import parity_latents as parity_latents


def parity_labels(classes: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n label rows: one-hot rows cycling through the classes, then (the second half) blends of random weights."""
    rows = np.eye(classes, dtype=np.float32)[np.arange(n) % classes]
    blends = n // 2
    if blends:
        rows[n - blends :] = rng.dirichlet(np.ones(classes), blends).astype(np.float32)
    return rows


def check_parity(
    vae: KerasVae,
    onnx_decode: Callable[..., Outputs],
    onnx_encode: Callable[..., Outputs] | None,
) -> ParityReport:
    """Run every check of the user's models against the ONNX graphs; raise ParityError at the first failure.

    The Keras side is the user's own models, run as they are (KerasVae only
    reshapes their outputs to the runtime's [n, H, W, C]). Decoded values must
    also lie in the value range the card will promise.
    """
    report = ParityReport()
    rng = np.random.default_rng(PARITY_SEED + 1)
    low, high = vae.value_range
    for what, z in parity_latents(vae.latent_dim).items():
        labels = parity_labels(vae.classes, len(z), rng) if vae.classes else None
        given = () if labels is None else (labels,)
        what += "" if labels is None else ", one-hot and blended labels"
        images = vae.decode(z, labels)
        check_decoded_range(images, vae.value_range)
        compare("decoder", what, {"image": images}, onnx_decode(z, *given), report)
        if onnx_encode is not None and what.startswith("N(0, I)"):
            # Encoder inputs: decoded images (what real inputs look like) and uniform noise over the value range.
            noise = rng.uniform(low, high, images.shape).astype(np.float32)
            for kind, x in (("decoded images", images), ("uniform noise", noise)):
                z_mean, z_log_var = vae.encode(x, labels)
                expected = {"z_mean": z_mean, "z_log_var": z_log_var}
                compare("encoder", f"{kind} batch {len(x)}", expected, onnx_encode(x, *given), report)
    return report


def load_keras(path: Path, custom_objects: dict[str, Any] | None = None, unsafe: bool = False) -> keras.Model:
    """Load a .keras file with safe_mode on (no arbitrary code from the file runs) unless `unsafe` (the CLI's
    --trust-code: Lambda layers' code runs); one-line errors."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".keras":
        raise ExportError(f"{path}: expected a .keras file (a Keras 3 model saved with model.save)")
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        model = keras.saving.load_model(path, custom_objects=custom_objects, compile=False, safe_mode=not unsafe)
    except TypeError as exc:
        missing = re.search(r"Could not locate (class|function) '([^']+)'", str(exc))
        if missing is None:
            raise ExportError(f"{path}: Keras cannot load it ({str(exc).splitlines()[0]})") from None
        raise ExportError(
            f"{path}: uses the custom {missing.group(1)} {missing.group(2)!r}, which is not defined here; pass the "
            "Python file that defines it with --custom-objects FILE.py"
        ) from None
    except (NameError, NotImplementedError) as exc:
        if "Lambda" not in str(exc):
            raise ExportError(f"{path}: Keras cannot load it ({type(exc).__name__}: {str(exc)[:200]!r})") from None
        # A saved lambda reading a name from around it (ops, K): Keras cannot even infer its output's shape.
        raise ExportError(f"{path}: a Lambda layer's code fails when Keras rebuilds the model (a .keras file keeps a "
                          f"lambda's own code, not the names it reads from around it): {REWRITE}") from None  # fmt: skip
    except (ValueError, OSError, KeyError) as exc:
        if "safe_mode=False" in str(exc):  # Keras's refusal of a Lambda layer's saved code
            raise ExportError(f"{path}: holds Python code (a Lambda layer) that runs when it is loaded; pass "
                              "--trust-code if you trust the file") from None  # fmt: skip
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"{path}: Keras cannot load it ({reason})") from None
    if unsafe:
        refuse_unsaved_names(model, str(path))
    return model


def load_custom_objects(path: Path) -> dict[str, Any]:
    """Import a Python file of custom layers: every Keras layer or model class it holds, and every function it
    defines itself (a `Lambda(sampling)` layer's function, which Keras saves by its name), by name.

    Objects registered with keras.saving.register_keras_serializable are found
    by Keras anyway; the others are passed to load_model by their name.
    """
    import importlib.util
    import inspect

    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise ExportError(f"--custom-objects {path}: expected a Python file (.py) defining your custom layers")
    spec = importlib.util.spec_from_file_location(f"vae_gen_custom_objects_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any error is theirs to see, in one line
        raise ExportError(f"--custom-objects {path}: importing it failed ({type(exc).__name__}: {exc})") from None
    return {
        name: value for name, value in vars(module).items()
        if (isinstance(value, type) and issubclass(value, (keras.layers.Layer, keras.Model)))
        or (inspect.isfunction(value) and value.__module__ == module.__name__)  # not the functions it imports
    }  # fmt: skip


def check_model_folder(folder: Path, custom_objects: dict[str, Any] | None = None, unsafe: bool = False) -> ParityReport:
    """Re-check a model folder's ONNX files, as the runtime runs them, against the Keras models it came from, read
    as the card's origin says the export read them (logits, a fused output, a tiled or concatenated label).
    A folder exported with --trust-code is loaded only with `unsafe` (--trust-code) again."""
    from vae_gen import Generator

    folder = Path(folder)
    generator = Generator(folder)  # verifies model.json, checksums and graph signatures first
    card = generator.card
    if not card.keras_files:
        reference = card.parity.get("reference", "another model")
        raise ParityError(f"{folder}: has no Keras models; its model.json compares it with {reference} instead")
    for role, name in card.keras_files.items():
        if not (folder / name).is_file():
            raise ParityError(f"{folder / name}: missing; parity needs the Keras {role} the model came from")
    if card.origin.get("trust_code") and not unsafe:
        raise ParityError(f"{folder}: was exported with --trust-code (its Keras files hold Python code); re-check it "
                          f"with vae-gen parity {folder} --trust-code if you trust its files")  # fmt: skip
    encoder_file = card.keras_files.get("encoder")
    roles = card.origin.get("encoder_outputs", (0, 1))
    logits = card.origin.get("decoder_output") == "logits"
    vae = inspect_vae(
        load_keras(folder / card.keras_files["decoder"], custom_objects, unsafe),
        load_keras(folder / encoder_file, custom_objects, unsafe) if encoder_file else None,
        image_shape=card.image_shape,
        value_range=None if logits else card.value_range,
        encoder_outputs=roles if isinstance(roles, str) else (roles[0], roles[1]),
        decoder_output="logits" if logits else None,
        classes=len(card.classes) if card.origin.get("decoder_label") == "concatenated" else 0,
        decoder_name=str(folder / card.keras_files["decoder"]),
        encoder_name=str(folder / encoder_file) if encoder_file else "",
    )
    if vae.classes != len(card.classes):
        raise ParityError(f"{folder}: the Keras decoder takes {vae.classes} classes, model.json names {len(card.classes)}")

    def decode(z: np.ndarray, labels: np.ndarray | None = None) -> Outputs:
        return {"image": generator.decode(z, label=labels)}

    def encode(x: np.ndarray, labels: np.ndarray | None = None) -> Outputs:
        return dict(zip(("z_mean", "z_log_var"), generator.encode(x, label=labels), strict=True))

    return check_parity(vae, decode, encode if generator.has_encoder else None)
