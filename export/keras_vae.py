"""A user's Keras VAE, understood before anything is converted: shapes, value range, which output is which.

The runtime's contract is fixed (decoder `z` [batch, latent] -> `image`
[batch, H, W, C]; encoder `image` -> `z_mean`, `z_log_var`); users' models
are not. `inspect_vae` reads a decoder (and optionally an encoder) as the
common tutorials write them: a decoder ending in [H, W], [H, W, C] or a
flat [H*W*C]; an encoder whose outputs are [z_mean, z_log_var] or
[z_mean, z_log_var, z] with z from a sampling layer. `KerasVae` then runs
them in the runtime's terms, for the conversion and for the parity gate.
A conditional VAE's decoder takes [z, label] and its encoder [image, label]
(in either order; the label input is found by its name, else it is the
second): label float32 [batch, classes], one-hot or class weights.

The other shapes people write, each handled inside the exported graph so the
runtime's contract stays as it is:
- a decoder that outputs logits (the loss applied the sigmoid): the graph
  applies it (`decoder_output="logits"`);
- an encoder with one fused output [batch, 2 * latent]: z_mean then
  z_log_var (`tf.split(..., 2, axis=1)`, TensorFlow's CVAE tutorial), or the
  other way round ("fused-log-var-first");
- a conditional decoder taking concat(z, label) as one input, and a
  conditional encoder taking the label tiled over the image as extra channels
  (image channels first): found when the class names are given (label_inputs).
`KerasVae.origin_shapes` records which of them applied, for the card's origin.
Every refusal is one line that names the user's model and what is expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from vae_gen.model.card_fields import CHANNELS, DECODER_OUTPUTS

from .convert import ExportError
from .label_inputs import find_decoder_label, find_encoder_label
from .posterior_outputs import FUSED_ORDERS, encoder_roles, fused_order, shape_text

#: Output activations whose range is evident, by their function's name.
ACTIVATION_RANGES = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
#: Layers that move values without changing them: the activation before them is the output's.
SHAPE_ONLY_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute, keras.layers.Cropping2D)
#: Decoded values may exceed their range by float rounding, never by more.
RANGE_SLACK = 1e-5


@dataclass(frozen=True)
class KerasVae:
    """A decoder (and encoder) with everything the runtime's contract needs to know about them."""

    decoder: keras.Model
    encoder: keras.Model | None
    latent_dim: int
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    #: Positions of z_mean and z_log_var among the encoder's outputs.
    encoder_outputs: tuple[int, int] = (0, 1)
    #: The label's width for a conditional VAE (its number of classes); 0 for an unconditional one.
    classes: int = 0
    #: Position of the label among the decoder's and the encoder's inputs (conditional only).
    decoder_label_input: int = 1
    encoder_label_input: int = 1
    #: The decoder outputs logits: the image is their sigmoid.
    logits: bool = False
    #: "fused" or "fused-log-var-first" when the encoder's one output holds both halves; None otherwise.
    fused: str | None = None
    #: A conditional decoder with one input, concat(z, label) (then decoder_label_input does not apply).
    decoder_label_concatenated: bool = False
    #: A conditional encoder with one input, the image with the label tiled over it as extra channels.
    encoder_label_tiled: bool = False

    @staticmethod
    def fed(x: Any, labels: Any, label_position: int) -> Any:
        """What a network takes: x alone, or x and the label rows in the network's input order."""
        if labels is None:
            return x
        return [labels, x] if label_position == 0 else [x, labels]

    def decoder_inputs(self, z: Any, labels: Any = None) -> Any:
        """What the user's decoder takes for z (and label rows): numpy arrays or tensors."""
        if labels is not None and self.decoder_label_concatenated:
            return keras.ops.concatenate([z, keras.ops.cast(labels, z.dtype)], axis=-1)
        return self.fed(z, labels, self.decoder_label_input)

    def encoder_inputs(self, x: Any, labels: Any = None) -> Any:
        """What the user's encoder takes for images x [n, H, W, C] (and label rows): reshaped to its own input;
        with a tiled label, the label's columns as constant channels after the image's."""
        x = keras.ops.reshape(x, (-1, *self._native_image_shape))  # a tensor now: so must the label be, beside it
        labels = None if labels is None else keras.ops.convert_to_tensor(labels)
        if labels is not None and self.encoder_label_tiled:
            height, width, _ = self.image_shape
            planes = keras.ops.tile(keras.ops.reshape(keras.ops.cast(labels, x.dtype), (-1, 1, 1, self.classes)),
                                    (1, height, width, 1))  # fmt: skip
            return keras.ops.concatenate([x, planes], axis=-1)
        return self.fed(x, labels, self.encoder_label_input)

    def decoded_images(self, outputs: Any) -> Any:
        """The user's decoder's output as images: the sigmoid of logits, else as it is."""
        return keras.ops.sigmoid(outputs) if self.logits else outputs

    def posterior(self, outputs: Any) -> tuple[Any, Any]:
        """(z_mean, z_log_var) from the user's encoder's outputs: two of them, or the halves of a fused one."""
        if self.fused is not None:
            halves = keras.ops.split(outputs if not isinstance(outputs, (list, tuple)) else outputs[0], 2, axis=-1)
            mean, log_var = FUSED_ORDERS[self.fused]
            return halves[mean], halves[log_var]
        mean, log_var = self.encoder_outputs
        return outputs[mean], outputs[log_var]

    def origin_shapes(self) -> dict[str, str]:
        """What the card's origin says about the shapes the exported graphs turned into the runtime's contract
        (read back by `vae-gen parity`; the runtime ignores them); empty for the plain shapes. The fused
        output's order is recorded as `encoder_outputs`, beside the positions of two outputs."""
        record = {"decoder_output": "logits"} if self.logits else {}
        if self.decoder_label_concatenated:
            record["decoder_label"] = "concatenated"
        if self.encoder_label_tiled:
            record["encoder_label"] = "tiled"
        return record

    @property
    def _native_image_shape(self) -> tuple[int, ...]:
        """The shape of the image part of the encoder's input (without the tiled label's channels)."""
        shape = self.encoder_input_shape
        return (*shape[:-1], shape[-1] - self.classes) if self.encoder_label_tiled else shape

    def _main_input(self, model: keras.Model) -> Any:
        """The one input of an unconditional network, the one that is not the label of a conditional one."""
        if len(model.inputs) == 1:
            return model.inputs[0]
        position = self.decoder_label_input if model is self.decoder else self.encoder_label_input
        return model.inputs[1 - position]

    @property
    def decoder_output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.decoder.outputs[0].shape[1:])

    @property
    def encoder_input_shape(self) -> tuple[int, ...]:
        assert self.encoder is not None
        return tuple(int(d) for d in self._main_input(self.encoder).shape[1:])

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """The user's decoder on z (and label rows, conditional), as float32 [n, H, W, C] (after the sigmoid,
        for logits)."""
        outputs = self.decoder(self.decoder_inputs(z, labels), training=False)
        return np.asarray(self.decoded_images(outputs)).reshape(len(z), *self.image_shape)

    def encode(self, images: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The user's encoder on images [n, H, W, C] (and label rows, conditional): (z_mean, z_log_var)."""
        assert self.encoder is not None
        mean, log_var = self.posterior(self.encoder(self.encoder_inputs(images, labels), training=False))
        return np.asarray(mean), np.asarray(log_var)


def inspect_vae(
    decoder: keras.Model,
    encoder: keras.Model | None = None,
    *,
    image_shape: tuple[int, int, int] | None = None,
    value_range: tuple[float, float] | None = None,
    encoder_outputs: tuple[int, int] | str | None = None,
    decoder_output: str | None = None,
    classes: int = 0,
    decoder_name: str = "the decoder",
    encoder_name: str = "the encoder",
) -> KerasVae:
    """Check the models against the runtime's contract and work out what it needs; ExportError if they do not fit.

    encoder_outputs: positions (MEAN, LOG_VAR) among the encoder's outputs, or "fused" / "fused-log-var-first"
    for one output holding both; None: found from the models. decoder_output: "logits" when the decoder's
    sigmoid is in the loss. classes: how many class names were given; with it, a one-input decoder takes
    concat(z, label) and a one-input encoder may take the label tiled over the image."""
    if decoder_output is not None and decoder_output not in DECODER_OUTPUTS:
        raise ExportError(f"--decoder-output {decoder_output}: expected one of {', '.join(DECODER_OUTPUTS)}")
    decoder_label, found_classes = find_decoder_label(decoder, decoder_name)
    concatenated = not found_classes and classes > 0
    z_input = decoder.inputs[0] if not found_classes else decoder.inputs[1 - decoder_label]
    latent_dim = _latent_dim(z_input, decoder_name) - (classes if concatenated else 0)
    if concatenated and latent_dim < 1:
        raise ExportError(f"{decoder_name} takes one input of {latent_dim + classes} values, too few for a latent and "
                          f"{classes} label columns; check --classes")  # fmt: skip
    classes = found_classes or classes
    shape = _image_shape(decoder, image_shape, decoder_name)
    logits = decoder_output == "logits"
    found = _logits_range(decoder, value_range, decoder_name) if logits else _value_range(decoder, value_range, decoder_name)
    roles, encoder_label, fused, tiled = (0, 1), 1, None, False
    if encoder is not None:
        encoder_label, tiled = find_encoder_label(encoder, classes, shape, encoder_name)
        image_input = encoder.inputs[0] if len(encoder.inputs) == 1 else encoder.inputs[1 - encoder_label]
        _check_encoder_input(image_input, shape, encoder_name, tiled_classes=classes if tiled else 0)
        fused = fused_order(encoder, latent_dim, encoder_outputs, encoder_name)
        if fused is None:
            roles = encoder_roles(encoder, latent_dim, encoder_outputs, encoder_name)  # type: ignore[arg-type]
    return KerasVae(decoder, encoder, latent_dim, shape, found, roles, classes, decoder_label, encoder_label,
                    logits=logits, fused=fused, decoder_label_concatenated=concatenated, encoder_label_tiled=tiled)


def _latent_dim(z_input: Any, name: str) -> int:
    shape = z_input.shape
    if len(shape) != 2 or shape[1] is None:
        raise ExportError(f"{name}'s input has shape {shape_text(shape)}; expected z [batch, latent]")
    return int(shape[1])


def _image_shape(decoder: keras.Model, given: tuple[int, int, int] | None, name: str) -> tuple[int, int, int]:
    if len(decoder.outputs) != 1:
        raise ExportError(f"{name} has {len(decoder.outputs)} outputs; expected one image batch")
    dims = tuple(decoder.outputs[0].shape[1:])
    if any(d is None for d in dims):
        shown = shape_text(decoder.outputs[0].shape)
        raise ExportError(f"{name}'s output has shape {shown}; every axis but the batch must be fixed")
    if len(dims) == 1:
        if given is None:
            raise ExportError(f"{name} outputs flat vectors of {dims[0]} values; say which images with --image-shape H,W,C")
        if math.prod(given) != dims[0]:
            raise ExportError(f"{name} outputs {dims[0]} values, but --image-shape {shape_text(given)} holds {math.prod(given)}")
        shape = given
    elif len(dims) in (2, 3):
        shape = (dims[0], dims[1], 1 if len(dims) == 2 else dims[2])
        if given is not None and tuple(given) != shape:
            raise ExportError(f"{name} outputs images of shape {shape_text(shape)}, not --image-shape {shape_text(given)}")
    else:
        raise ExportError(f"{name}'s output has shape {shape_text(decoder.outputs[0].shape)}; expected [batch, H, W], "
                          "[batch, H, W, C] or a flat [batch, H*W*C]")  # fmt: skip
    if shape[2] not in CHANNELS:
        raise ExportError(f"{name} makes images with {shape[2]} channels; vae-gen takes 1 (grayscale) or 3 (RGB)")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def output_activation(model: keras.Model) -> str | None:
    """The name of the activation that makes `model`'s output, looking through nested models and layers that only
    move values (Reshape, Flatten, ...); None when it is not evident."""
    tensor = model.outputs[0]
    while True:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        layer = history.operation
        if isinstance(layer, keras.Model):
            tensor = layer.outputs[history.tensor_index]
        elif isinstance(layer, SHAPE_ONLY_LAYERS):
            tensor = layer._inbound_nodes[history.node_index].input_tensors[0]
        else:
            activation = getattr(layer, "activation", None)
            return getattr(activation, "__name__", None)


def _value_range(decoder: keras.Model, given: tuple[float, float] | None, name: str) -> tuple[float, float]:
    activation = output_activation(decoder)
    evident = ACTIVATION_RANGES.get(activation or "")
    if evident is None:
        if given is None:
            raise ExportError(
                f"{name}'s output activation ({activation or 'none found'}) does not say its value range; if it "
                "outputs logits (the loss applies the sigmoid), pass --decoder-output logits; else --value-range 0,1 "
                "or -1,1"
            )
        return given
    if given is not None and tuple(given) != evident:
        raise ExportError(
            f"{name} ends in {activation}, whose values span {_range_text(evident)}, not --value-range {_range_text(given)}"
        )
    return evident


def _logits_range(decoder: keras.Model, given: tuple[float, float] | None, name: str) -> tuple[float, float]:
    """The value range of a logits decoder's images, the sigmoid's: refused for a decoder whose output activation
    bounds it already (its values are not logits)."""
    activation = output_activation(decoder)
    if activation in ACTIVATION_RANGES:
        raise ExportError(f"{name} ends in {activation}: its outputs are images already, not logits; drop "
                          "--decoder-output logits")  # fmt: skip
    if given is not None and tuple(given) != (0.0, 1.0):
        raise ExportError(f"--decoder-output logits makes images in [0, 1] (their sigmoid), not --value-range "
                          f"{_range_text(given)}")  # fmt: skip
    return (0.0, 1.0)


def _check_encoder_input(image_input: Any, image_shape: tuple[int, int, int], name: str, tiled_classes: int = 0) -> None:
    dims = tuple(image_input.shape[1:])
    h, w, c = image_shape
    accepted = {(h, w, c + tiled_classes)} if tiled_classes else {(h, w, c), (h * w * c,)} | ({(h, w)} if c == 1 else set())
    if dims not in accepted:
        raise ExportError(
            f"{name} takes inputs of shape {shape_text(image_input.shape)}, but the decoder makes images of "
            f"shape {shape_text(image_shape)}"
        )


def _range_text(value_range: tuple[float, float]) -> str:
    return f"[{value_range[0]:g}, {value_range[1]:g}]"


def check_decoded_range(images: np.ndarray, value_range: tuple[float, float], name: str = "the decoder") -> None:
    """Decoded values must lie in the value range the card will promise."""
    low, high = float(images.min()), float(images.max())
    if low < value_range[0] - RANGE_SLACK or high > value_range[1] + RANGE_SLACK:
        raise ExportError(
            f"{name}'s outputs span [{low:.4g}, {high:.4g}] on the parity latents, outside the value range "
            f"{_range_text(value_range)}"
        )
