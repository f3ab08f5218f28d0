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
Every refusal is one line that names the user's model and what is expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from vae_gen.model_card import CHANNELS

from .convert import ExportError

#: Output activations whose range is evident, by their function's name.
ACTIVATION_RANGES = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
#: Layers that move values without changing them: the activation before them is the output's.
SHAPE_ONLY_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute, keras.layers.Cropping2D)
#: Decoded values may exceed their range by float rounding, never by more.
RANGE_SLACK = 1e-5
#: Words in an output's name that say which posterior parameter it is.
MEAN_NAMES = re.compile(r"mean|(^|_)mu($|_)", re.IGNORECASE)
LOG_VAR_NAMES = re.compile(r"log_?var", re.IGNORECASE)
#: A log standard deviation is not a log variance (it is half of one): such an output is refused, not guessed at.
LOG_STD_NAMES = re.compile(r"log_?sigma|log_?std", re.IGNORECASE)
#: Words in an input's name that say it is the class label of a conditional model.
LABEL_NAMES = re.compile(r"(^|_)(labels?|class(es)?|cond(ition)?|one_?hot|y)($|_)", re.IGNORECASE)


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

    @staticmethod
    def fed(x: Any, labels: Any, label_position: int) -> Any:
        """What a network takes: x alone, or x and the label rows in the network's input order."""
        if labels is None:
            return x
        return [labels, x] if label_position == 0 else [x, labels]

    def _main_input(self, model: keras.Model) -> Any:
        """The one input of an unconditional network, the one that is not the label of a conditional one."""
        position = self.decoder_label_input if model is self.decoder else self.encoder_label_input
        return model.inputs[0] if not self.classes else model.inputs[1 - position]

    @property
    def decoder_output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.decoder.outputs[0].shape[1:])

    @property
    def encoder_input_shape(self) -> tuple[int, ...]:
        assert self.encoder is not None
        return tuple(int(d) for d in self._main_input(self.encoder).shape[1:])

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """The user's decoder on z (and label rows, conditional), as float32 [n, H, W, C]."""
        outputs = self.decoder(self.fed(z, labels, self.decoder_label_input), training=False)
        return np.asarray(outputs).reshape(len(z), *self.image_shape)

    def encode(self, images: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The user's encoder on images [n, H, W, C] (and label rows, conditional): (z_mean, z_log_var)."""
        assert self.encoder is not None
        x = images.reshape(len(images), *self.encoder_input_shape)
        outputs = self.encoder(self.fed(x, labels, self.encoder_label_input), training=False)
        mean, log_var = self.encoder_outputs
        return np.asarray(outputs[mean]), np.asarray(outputs[log_var])


def inspect_vae(
    decoder: keras.Model,
    encoder: keras.Model | None = None,
    *,
    image_shape: tuple[int, int, int] | None = None,
    value_range: tuple[float, float] | None = None,
    encoder_outputs: tuple[int, int] | None = None,
    decoder_name: str = "the decoder",
    encoder_name: str = "the encoder",
) -> KerasVae:
    """Check the models against the runtime's contract and work out what it needs; ExportError if they do not fit."""
    decoder_label, classes = _decoder_label(decoder, decoder_name)
    z_input = decoder.inputs[0] if not classes else decoder.inputs[1 - decoder_label]
    latent_dim = _latent_dim(z_input, decoder_name)
    shape = _image_shape(decoder, image_shape, decoder_name)
    found = _value_range(decoder, value_range, decoder_name)
    roles, encoder_label = (0, 1), 1
    if encoder is not None:
        encoder_label = _encoder_label(encoder, classes, encoder_name)
        image_input = encoder.inputs[0] if not classes else encoder.inputs[1 - encoder_label]
        _check_encoder_input(image_input, shape, encoder_name)
        roles = _encoder_roles(encoder, latent_dim, encoder_outputs, encoder_name)
    return KerasVae(decoder, encoder, latent_dim, shape, found, roles, classes, decoder_label, encoder_label)


def _label_position(model: keras.Model, is_main: Any) -> int:
    """Which of a two-input model's inputs is the label: the one named so (a whole word of its name: `class_label`,
    `y`, not `second`), else the one `is_main` rejects, else 1."""
    named = [i for i, tensor in enumerate(model.inputs) if LABEL_NAMES.search(_input_name(tensor))]
    if len(named) == 1:
        return named[0]
    not_main = [i for i, tensor in enumerate(model.inputs) if not is_main(tensor)]
    return not_main[0] if len(not_main) == 1 else 1


def _decoder_label(decoder: keras.Model, name: str) -> tuple[int, int]:
    """(position of the label input, number of classes) of a conditional decoder; (1, 0) for one input."""
    if len(decoder.inputs) == 1:
        return 1, 0
    if len(decoder.inputs) != 2:
        raise ExportError(f"{name} has {len(decoder.inputs)} inputs; expected z [batch, latent], or z and a label "
                          "[batch, classes] for a conditional VAE")  # fmt: skip
    position = _label_position(decoder, lambda tensor: False)
    shape = decoder.inputs[position].shape
    if len(shape) != 2 or shape[1] is None or int(shape[1]) < 2:
        raise ExportError(f"{name}'s label input {_input_name(decoder.inputs[position])!r} has shape {_shape_text(shape)}; "
                          "expected [batch, classes] with 2 classes or more")  # fmt: skip
    return position, int(shape[1])


def _encoder_label(encoder: keras.Model, classes: int, name: str) -> int:
    """Position of a conditional encoder's label input; the encoder of a conditional VAE must take one."""
    if not classes:
        if len(encoder.inputs) != 1:
            raise ExportError(f"{name} has {len(encoder.inputs)} inputs but the decoder takes no label; expected one, "
                              "the image batch")  # fmt: skip
        return 1
    if len(encoder.inputs) != 2:
        raise ExportError(f"{name} has {len(encoder.inputs)} inputs; the decoder is conditional, so expected the image "
                          f"batch and the label [batch, {classes}]")  # fmt: skip
    position = _label_position(encoder, lambda tensor: len(tensor.shape) > 2)
    shape = tuple(encoder.inputs[position].shape[1:])
    if shape != (classes,):
        raise ExportError(f"{name}'s label input has shape {_shape_text(encoder.inputs[position].shape)}; the decoder's "
                          f"label is [batch, {classes}]")  # fmt: skip
    return position


def _input_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    return str(getattr(history.operation, "name", "")) if history is not None else str(getattr(tensor, "name", ""))


def _latent_dim(z_input: Any, name: str) -> int:
    shape = z_input.shape
    if len(shape) != 2 or shape[1] is None:
        raise ExportError(f"{name}'s input has shape {_shape_text(shape)}; expected z [batch, latent]")
    return int(shape[1])


def _image_shape(decoder: keras.Model, given: tuple[int, int, int] | None, name: str) -> tuple[int, int, int]:
    if len(decoder.outputs) != 1:
        raise ExportError(f"{name} has {len(decoder.outputs)} outputs; expected one image batch")
    dims = tuple(decoder.outputs[0].shape[1:])
    if any(d is None for d in dims):
        shape_text = _shape_text(decoder.outputs[0].shape)
        raise ExportError(f"{name}'s output has shape {shape_text}; every axis but the batch must be fixed")
    if len(dims) == 1:
        if given is None:
            raise ExportError(f"{name} outputs flat vectors of {dims[0]} values; say which images with --image-shape H,W,C")
        if math.prod(given) != dims[0]:
            raise ExportError(f"{name} outputs {dims[0]} values, but --image-shape {_shape_text(given)} holds {math.prod(given)}")
        shape = given
    elif len(dims) in (2, 3):
        shape = (dims[0], dims[1], 1 if len(dims) == 2 else dims[2])
        if given is not None and tuple(given) != shape:
            raise ExportError(f"{name} outputs images of shape {_shape_text(shape)}, not --image-shape {_shape_text(given)}")
    else:
        raise ExportError(f"{name}'s output has shape {_shape_text(decoder.outputs[0].shape)}; expected [batch, H, W], "
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
                f"{name}'s output activation ({activation or 'none found'}) does not say its value range; "
                "pass --value-range 0,1 or -1,1"
            )
        return given
    if given is not None and tuple(given) != evident:
        raise ExportError(
            f"{name} ends in {activation}, whose values span {_range_text(evident)}, not --value-range {_range_text(given)}"
        )
    return evident


def _check_encoder_input(image_input: Any, image_shape: tuple[int, int, int], name: str) -> None:
    dims = tuple(image_input.shape[1:])
    h, w, c = image_shape
    accepted = {(h, w, c), (h * w * c,)} | ({(h, w)} if c == 1 else set())
    if dims not in accepted:
        raise ExportError(
            f"{name} takes inputs of shape {_shape_text(image_input.shape)}, but the decoder makes images of "
            f"shape {_shape_text(image_shape)}"
        )


def _encoder_roles(encoder: keras.Model, latent_dim: int, given: tuple[int, int] | None, name: str) -> tuple[int, int]:
    outputs = encoder.outputs
    if len(outputs) not in (2, 3):
        raise ExportError(f"{name} has {len(outputs)} outputs; expected [z_mean, z_log_var] or [z_mean, z_log_var, z]")
    for i, tensor in enumerate(outputs):
        if tuple(tensor.shape[1:]) != (latent_dim,):
            raise ExportError(f"{name}'s output {i} has shape {_shape_text(tensor.shape)}; expected [batch, {latent_dim}]")
    if given is not None:
        if len(set(given)) != 2 or not all(0 <= i < len(outputs) for i in given):
            raise ExportError(f"--encoder-outputs {given[0]},{given[1]}: two different positions below {len(outputs)}")
        return given
    names = [_producer_name(tensor) for tensor in outputs]
    log_std = next((n for n in names if LOG_STD_NAMES.search(n)), None)
    if log_std is not None:
        raise ExportError(
            f"{name}'s output {log_std!r} looks like a log standard deviation; vae-gen needs z_log_var, the log variance "
            "(2 x log sigma): output that, or pass --encoder-outputs MEAN,LOG_VAR if it already is one"
        )
    sampled = _sampling_inputs(outputs)
    if sampled is not None:
        return sampled
    means = [i for i, n in enumerate(names) if MEAN_NAMES.search(n)]
    log_vars = [i for i, n in enumerate(names) if LOG_VAR_NAMES.search(n)]
    if len(means) == 1 and len(log_vars) == 1 and means != log_vars:
        return means[0], log_vars[0]
    return 0, 1  # the tutorials' order; --encoder-outputs says otherwise


def _sampling_inputs(outputs: list[Any]) -> tuple[int, int] | None:
    """With three outputs, the sampled z is the one computed from the other two: its layer's inputs are, in order,
    (z_mean, z_log_var), as a sampling layer takes them. None when no output is made that way."""
    if len(outputs) != 3:
        return None
    for i, tensor in enumerate(outputs):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        inputs = list(history.operation._inbound_nodes[history.node_index].input_tensors)
        positions = [next((j for j, other in enumerate(outputs) if other is t and j != i), None) for t in inputs]
        if len(positions) == 2 and None not in positions and positions[0] != positions[1]:
            return positions[0], positions[1]  # type: ignore[return-value]
    return None


def _producer_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    return str(getattr(history.operation, "name", "")) if history is not None else ""


def _shape_text(shape: Any) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


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
