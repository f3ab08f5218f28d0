"""The parts of a model card, each a frozen dataclass: an ONNX graph's entry, the conditioning, the prior and
the golden checks.

`ModelCard` (model.card) is built from these; `card_fields` reads each of them
from model.json and checks it on the way, so an instance is always valid. The
exporter builds them directly when it writes a card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OnnxFile:
    """One ONNX graph of the folder, with its tensor names and checksum."""

    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Conditioning:
    """A class-conditional model: the name of its label input and its classes, in label order."""

    #: The decoder's and encoder's second input: float32 [batch, len(classes)].
    input: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Prior:
    """A learned prior: a graph from N(0, I) noise [batch, noise_dim] to latents [batch, latent_dim]."""

    graph: OnnxFile
    #: How it was made ("gmm": a Gaussian mixture; "two-stage": a second-stage VAE's decoder).
    kind: str
    noise_dim: int
    #: The first `unscaled_noise` noise coordinates are left alone by the temperature (a mixture's
    #: component choice); the rest are scaled by it.
    unscaled_noise: int
    #: How it was fitted (data, settings, scores): shown, not acted on.
    fitted: dict[str, Any]


@dataclass(frozen=True)
class GoldenCheck:
    """Fixed latents (and labels) and the decoder outputs they gave at export time.

    Lets a user's machine check its onnxruntime against the exporter's
    without TensorFlow: `images` are float32 [n, *image_shape], flattened;
    `labels` are the label rows fed with the latents (a conditional model), else empty.
    """

    latents: tuple[tuple[float, ...], ...]
    images: tuple[tuple[float, ...], ...]
    tolerance: float
    labels: tuple[tuple[float, ...], ...] = ()
    #: With a prior: noise rows [n, noise_dim] and the images prior -> decoder made of them (with `labels`).
    noise: tuple[tuple[float, ...], ...] = ()
    noise_images: tuple[tuple[float, ...], ...] = ()
