"""Where a conditional VAE's label goes in: which input of a two-input network is the label, or, for one-input
networks once the classes are named, concat(z, label) into the decoder and the label tiled over the image as
extra channels into the encoder (TensorFlow's CVAE style).

The label is float32 [batch, classes], one-hot or class weights. Every refusal is one line that names the
user's model, what is expected, and --classes where naming them would make the model fit.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from .convert import ExportError
from .posterior_outputs import shape_text

#: Words in an input's name that say it is the class label of a conditional model.
LABEL_NAMES = re.compile(r"(^|_)(labels?|class(es)?|cond(ition)?|one_?hot|y)($|_)", re.IGNORECASE)


def find_decoder_label(decoder: keras.Model, name: str) -> tuple[int, int]:
    """(position of the label input, number of classes) of a two-input decoder; (1, 0) for one input (a
    conditional one then takes concat(z, label), which only the class names given can say)."""
    if len(decoder.inputs) == 1:
        return 1, 0
    if len(decoder.inputs) != 2:
        raise ExportError(f"{name} has {len(decoder.inputs)} inputs; expected z [batch, latent], or z and a label "
                          "[batch, classes] for a conditional VAE")  # fmt: skip
    position = _label_position(decoder, lambda tensor: False)
    shape = decoder.inputs[position].shape
    if len(shape) != 2 or shape[1] is None or int(shape[1]) < 2:
        raise ExportError(f"{name}'s label input {input_name(decoder.inputs[position])!r} has shape {shape_text(shape)}; "
                          "expected [batch, classes] with 2 classes or more")  # fmt: skip
    return position, int(shape[1])


def find_encoder_label(encoder: keras.Model, classes: int, image_shape: tuple[int, int, int], name: str) -> tuple[int, bool]:
    """(position of a conditional encoder's label input, whether the label comes tiled into the image's channels
    instead). The encoder of a conditional VAE must take the label one way or the other."""
    h, w, c = image_shape
    if not classes:
        if len(encoder.inputs) != 1:
            raise ExportError(f"{name} has {len(encoder.inputs)} inputs but the decoder takes no label; expected one, "
                              "the image batch (for a conditional VAE whose decoder takes concat(z, label), name the "
                              "classes with --classes)")  # fmt: skip
        dims = tuple(encoder.inputs[0].shape[1:])
        if len(dims) == 3 and dims[:2] == (h, w) and dims[2] is not None and dims[2] > c + 1:
            raise ExportError(f"{name} takes inputs of shape {shape_text(encoder.inputs[0].shape)}, but the decoder "
                              f"makes images of shape {shape_text(image_shape)}; if its {dims[2] - c} channels after "
                              f"the image's are a label tiled over it, name the classes with --classes (as many as "
                              f"{dims[2] - c})")  # fmt: skip
        return 1, False
    if len(encoder.inputs) == 1:
        if tuple(encoder.inputs[0].shape[1:]) == (h, w, c + classes):
            return 1, True  # the label tiled over the image, after its channels
        raise ExportError(f"{name} takes one input, {shape_text(encoder.inputs[0].shape)}; the decoder is conditional "
                          f"({classes} classes), so expected the image batch and the label [batch, {classes}] as two "
                          f"inputs, or one input [batch, {h}, {w}, {c + classes}] with the label tiled after the image's "
                          "channels")  # fmt: skip
    if len(encoder.inputs) != 2:
        raise ExportError(f"{name} has {len(encoder.inputs)} inputs; the decoder is conditional, so expected the image "
                          f"batch and the label [batch, {classes}]")  # fmt: skip
    position = _label_position(encoder, lambda tensor: len(tensor.shape) > 2)
    shape = tuple(encoder.inputs[position].shape[1:])
    if shape != (classes,):
        raise ExportError(f"{name}'s label input has shape {shape_text(encoder.inputs[position].shape)}; the decoder's "
                          f"label is [batch, {classes}]")  # fmt: skip
    return position, False


def _label_position(model: keras.Model, is_main: Any) -> int:
    """Which of a two-input model's inputs is the label: the one named so (a whole word of its name: `class_label`,
    `y`, not `second`), else the one `is_main` rejects, else 1."""
    named = [i for i, tensor in enumerate(model.inputs) if LABEL_NAMES.search(input_name(tensor))]
    if len(named) == 1:
        return named[0]
    not_main = [i for i, tensor in enumerate(model.inputs) if not is_main(tensor)]
    return not_main[0] if len(not_main) == 1 else 1


def input_name(tensor: Any) -> str:
    """The name of the layer that makes `tensor` (an Input's own name), as the user wrote it."""
    history = getattr(tensor, "_keras_history", None)
    return str(getattr(history.operation, "name", "")) if history is not None else str(getattr(tensor, "name", ""))
