"""Reading model.json's fields: each checked for presence, type, shape and allowed values, into the card's parts.

`require_field` is the one check of a field's presence and JSON type (a bool is
not a number here); the readers check the image shape, the value range, the
origin (`ORIGINS`) and the graphs' inputs, and build an `OnnxFile`, the
`Conditioning`, the `Prior` and the `GoldenCheck` from their entries, refusing
what does not fit the rest of the card. The words some fields hold (CHANNELS,
and an imported model's FUSED_ENCODER_OUTPUTS and DECODER_OUTPUTS) are named
here once. Every refusal is one ModelCardError naming the source and the
field; `ModelCard.from_dict` (model.card) puts the parts together.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.checks import shown
from ..errors import ModelCardError
from .card_parts import Conditioning, GoldenCheck, OnnxFile, Prior

#: Channel counts the runtime turns into pictures: grayscale and RGB.
CHANNELS = (1, 3)
#: Where a model came from: trained by `vae-gen train`, or imported from a user's Keras files.
ORIGINS = ("trained", "keras")
#: An imported model's `origin.encoder_outputs` when the user's encoder has one output holding z_mean and z_log_var
#: side by side, in that order or the other; read by `vae-gen parity` and said by `vae-gen info`.
FUSED_ENCODER_OUTPUTS = ("fused", "fused-log-var-first")
#: What the user's decoder outputs: images in the value range, or logits (`origin.decoder_output`: "logits").
DECODER_OUTPUTS = ("probabilities", "logits")


def require_field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str, prefix: str = "") -> Any:
    if key not in data:
        raise ModelCardError(f"{source}: missing field '{prefix}{key}'")
    value = data[key]
    # bool is an int in Python; a card saying `"latent_dim": true` is still wrong.
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ModelCardError(f"{source}: field '{prefix}{key}' must be {expected}, got {type(value).__name__}")
    return value


def read_conditioning(data: dict[str, Any], source: str) -> Conditioning:
    name = require_field(data, "input", str, source, "conditioning.")
    classes = require_field(data, "classes", list, source, "conditioning.")
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise ModelCardError(f"{source}: field 'conditioning.classes' must list two or more different, non-empty class names")
    return Conditioning(name, tuple(classes))


def read_prior(data: dict[str, Any], latent_dim: int, source: str) -> Prior:
    graph = read_onnx_file(data, "prior", source)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelCardError(f"{source}: field 'prior' must name one input (the noise) and one output (z)")
    noise_dim = require_field(data, "noise_dim", int, source, "prior.")
    unscaled = require_field(data, "unscaled_noise", int, source, "prior.")
    if noise_dim < 1 or not 0 <= unscaled <= noise_dim:
        raise ModelCardError(f"{source}: field 'prior' needs noise_dim >= 1 and 0 <= unscaled_noise <= noise_dim, "
                             f"got {noise_dim} and {unscaled}")  # fmt: skip
    return Prior(graph, require_field(data, "kind", str, source, "prior."), noise_dim, unscaled,
                 require_field(data, "fitted", dict, source, "prior."))  # fmt: skip


def _golden_noise(
    golden: dict[str, Any], prior: Prior | None, source: str, rows: int, pixels: int
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """golden.noise and golden.noise_images: required with a prior, as many rows as golden.latents."""
    if prior is None:
        return (), ()
    return (read_matrix(golden, "noise", source, rows=rows, width=prior.noise_dim),
            read_matrix(golden, "noise_images", source, rows=rows, width=pixels))  # fmt: skip


def is_finite_number(value: object) -> bool:
    """A JSON number (not a bool) that is finite as a float: 1e400 and 400-digit integers are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def read_matrix(
    golden: dict[str, Any], key: str, source: str, rows: int | None = None, width: int | None = None
) -> tuple[tuple[float, ...], ...]:
    """golden.KEY: a list of `rows` lists of `width` finite numbers (each None: any, but all rows alike)."""
    value = require_field(golden, key, list, source, "golden.")
    ok = all(isinstance(row, list) and all(is_finite_number(v) for v in row) for row in value)
    widths = {len(row) for row in value} if ok else set()
    ok = ok and len(widths) <= 1 and (rows is None or len(value) == rows)
    ok = ok and (width is None or not value or widths == {width})
    if not ok:
        shape = f"{'N' if rows is None else rows} rows of {'equally many' if width is None else width} finite numbers"
        raise ModelCardError(f"{source}: field 'golden.{key}' must hold {shape}")
    return tuple(tuple(float(v) for v in row) for row in value)


def check_graph_inputs(graph: OnnxFile, role: str, conditioning: Conditioning | None, source: str) -> None:
    """A graph takes one input, or two (the first, then the label input) when the model is conditional."""
    expected = 1 if conditioning is None else 2
    if len(graph.inputs) != expected or (conditioning is not None and graph.inputs[1] != conditioning.input):
        want = "one input" if conditioning is None else f"two inputs, the second {conditioning.input!r} (conditioning.input)"
        raise ModelCardError(f"{source}: field '{role}.inputs' is {list(graph.inputs)}; expected {want}")


def read_onnx_file(data: dict[str, Any], key: str, source: str) -> OnnxFile:
    prefix = f"{key}."
    names = {}
    for part in ("inputs", "outputs"):
        values = require_field(data, part, list, source, prefix)
        if not values or not all(isinstance(v, str) for v in values):
            raise ModelCardError(f"{source}: field '{prefix}{part}' must be a non-empty list of names")
        names[part] = tuple(values)
    file = require_field(data, "file", str, source, prefix)
    # The runtime only ever opens files inside the model folder.
    if Path(file).name != file:
        raise ModelCardError(f"{source}: field '{prefix}file' must be a plain file name, got {file!r}")
    return OnnxFile(file=file, sha256=require_field(data, "sha256", str, source, prefix), **names)


def read_golden(
    golden: dict[str, Any], latent_dim: int, pixels: int, conditioning: Conditioning | None, prior: Prior | None,
    source: str,
) -> GoldenCheck:
    """golden: latents of `latent_dim`, images of `pixels` values each, a tolerance >= 0, and the labels of a
    conditional model and the noise of a model with a prior, as many rows of each as latents."""
    latents = read_matrix(golden, "latents", source, width=latent_dim)
    images = read_matrix(golden, "images", source, rows=len(latents), width=pixels)
    tolerance = require_field(golden, "tolerance", float, source, "golden.")
    if not is_finite_number(tolerance) or tolerance < 0:
        raise ModelCardError(f"{source}: field 'golden.tolerance' must be a finite number >= 0, got {shown(tolerance)}")
    noise, noise_images = _golden_noise(golden, prior, source, len(latents), pixels)
    labels: tuple[tuple[float, ...], ...] = ()
    if conditioning is not None:
        labels = read_matrix(golden, "labels", source, rows=len(latents), width=len(conditioning.classes))
    return GoldenCheck(latents=latents, images=images, tolerance=float(tolerance), labels=labels, noise=noise,
                       noise_images=noise_images)  # fmt: skip


def read_image_shape(data: dict[str, Any], source: str) -> tuple[int, int, int]:
    """image_shape: [H, W, C] of positive integers, C one of CHANNELS."""
    image_shape = tuple(require_field(data, "image_shape", list, source))
    if len(image_shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_shape):
        raise ModelCardError(f"{source}: image_shape must be 3 positive integers [H, W, C], got {list(image_shape)}")
    if image_shape[2] not in CHANNELS:
        raise ModelCardError(f"{source}: image_shape's C must be 1 (grayscale) or 3 (RGB), got {image_shape[2]}")
    return (image_shape[0], image_shape[1], image_shape[2])


def read_value_range(data: dict[str, Any], source: str) -> tuple[float, float]:
    """value_range: [low, high], finite numbers with low < high."""
    value_range = tuple(require_field(data, "value_range", list, source))
    if len(value_range) != 2 or not all(is_finite_number(v) for v in value_range) or not value_range[0] < value_range[1]:
        raise ModelCardError(
            f"{source}: value_range must be [low, high], finite numbers with low < high, got {shown(list(value_range))}"
        )
    return (float(value_range[0]), float(value_range[1]))


def read_encoder_and_origin(data: dict[str, Any], version: int, source: str) -> tuple[OnnxFile | None, dict[str, Any]]:
    """The encoder's entry (required in format 1, else it may be null) and the origin (format 1: trained)."""
    if version == 1:
        return read_onnx_file(require_field(data, "encoder", dict, source), "encoder", source), {"kind": "trained"}
    encoder_entry = require_field(data, "encoder", (dict, type(None)), source)
    encoder = None if encoder_entry is None else read_onnx_file(encoder_entry, "encoder", source)
    origin: dict[str, Any] = require_field(data, "origin", dict, source)
    if origin.get("kind") not in ORIGINS:
        raise ModelCardError(f"{source}: field 'origin.kind' must be one of {', '.join(ORIGINS)}, got {origin.get('kind')!r}")
    return encoder, origin


def read_conditioning_and_prior(
    data: dict[str, Any], version: int, latent_dim: int, graphs: tuple[OnnxFile, OnnxFile | None], source: str
) -> tuple[Conditioning | None, Prior | None]:
    """Format 3's conditioning and prior (None before it); the graphs' inputs are checked against the first."""
    conditioning = None
    if version >= 3:
        entry = require_field(data, "conditioning", (dict, type(None)), source)
        conditioning = None if entry is None else read_conditioning(entry, source)
    for graph, role in zip(graphs, ("decoder", "encoder"), strict=True):
        if graph is not None:
            check_graph_inputs(graph, role, conditioning, source)
    prior = None
    if version >= 3:
        prior_entry = require_field(data, "prior", (dict, type(None)), source)
        prior = None if prior_entry is None else read_prior(prior_entry, latent_dim, source)
    return conditioning, prior
