"""Which of a user's encoder outputs are z_mean and z_log_var: two or three outputs (by a sampling layer's
inputs, by their names, else by position), or one fused output holding both halves.

A log standard deviation is refused rather than taken for a log variance, and a fused output's order is
stated (z_mean first, as TensorFlow's CVAE tutorial splits it) unless the caller says the other; given
data, the order is checked on it (`check_fused_order`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from vae_gen.model.card_fields import FUSED_ENCODER_OUTPUTS

from .convert import ExportError

if TYPE_CHECKING:
    from .keras_vae import KerasVae

log = logging.getLogger(__name__)

#: Words in an output's name that say which posterior parameter it is.
MEAN_NAMES = re.compile(r"mean|(^|_)mu($|_)", re.IGNORECASE)
LOG_VAR_NAMES = re.compile(r"log_?var", re.IGNORECASE)
#: A log standard deviation is not a log variance (it is half of one): such an output is refused, not guessed at.
LOG_STD_NAMES = re.compile(r"log_?sigma|log_?std", re.IGNORECASE)
#: An encoder output holding both posterior parameters: z_mean then z_log_var, or the other way round.
FUSED_ORDERS = dict(zip(FUSED_ENCODER_OUTPUTS, ((0, 1), (1, 0)), strict=True))
#: Images of the data a fused encoder's order is checked on.
ORDER_CHECK_IMAGES = 256
#: The other order is taken to be the right one when its mean half reconstructs with under this fraction of the
#: stated order's squared error: a trained encoder's halves differ by far more, so near-ties (an encoder barely
#: trained) pass as stated.
CLEARLY_BETTER = 0.8


def shape_text(shape: Any) -> str:
    """A tensor shape as refusals spell it: [batch, 28, 28, 1]."""
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def fused_order(encoder: keras.Model, latent_dim: int, given: tuple[int, int] | str | None, name: str) -> str | None:
    """"fused" or "fused-log-var-first" for an encoder with one output [batch, 2 * latent]; None for the others."""
    outputs = encoder.outputs
    if isinstance(given, str):
        if given not in FUSED_ORDERS:
            raise ExportError(f"--encoder-outputs {given}: expected MEAN,LOG_VAR positions, or one of "
                              f"{', '.join(FUSED_ORDERS)}")  # fmt: skip
        if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (2 * latent_dim,):
            raise ExportError(f"--encoder-outputs {given} is for one output [batch, {2 * latent_dim}] (z_mean and "
                              f"z_log_var side by side); {name} outputs "
                              f"{', '.join(shape_text(t.shape) for t in outputs)}: give the positions of z_mean and "
                              "z_log_var as --encoder-outputs MEAN,LOG_VAR, or leave it out")  # fmt: skip
        return given
    if len(outputs) == 1 and tuple(outputs[0].shape[1:]) == (2 * latent_dim,):
        if given is not None:
            raise ExportError(f"--encoder-outputs {given[0]},{given[1]}: {name} has one output, "
                              f"{shape_text(outputs[0].shape)}; pass --encoder-outputs fused (z_mean first) or "
                              "fused-log-var-first")  # fmt: skip
        log.info("%s: one output of 2 x %d values, taken as z_mean then z_log_var (--encoder-outputs fused; "
                 "fused-log-var-first says the other order)", name, latent_dim)  # fmt: skip
        return "fused"
    return None


def encoder_roles(encoder: keras.Model, latent_dim: int, given: tuple[int, int] | None, name: str) -> tuple[int, int]:
    outputs = encoder.outputs
    if len(outputs) not in (2, 3):
        shapes = ", ".join(shape_text(t.shape) for t in outputs)
        raise ExportError(f"{name} has {len(outputs)} outputs ({shapes}); expected [z_mean, z_log_var], "
                          f"[z_mean, z_log_var, z], or one fused [batch, {2 * latent_dim}]")  # fmt: skip
    for i, tensor in enumerate(outputs):
        if tuple(tensor.shape[1:]) != (latent_dim,):
            raise ExportError(f"{name}'s output {i} has shape {shape_text(tensor.shape)}; expected [batch, {latent_dim}]")
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


def check_fused_order(vae: KerasVae, data: str, data_dir: Path | None, class_names: tuple[str, ...], name: str) -> None:
    """On real images, a fused output's mean half must be the one whose decoding reconstructs them: refuse the
    stated order when the other reconstructs clearly better (the halves are the other way round)."""
    from vae_gen.train.datasets import evaluation_images

    assert vae.fused is not None
    found = evaluation_images(data, vae.image_shape, data_dir)
    images = found.images[:ORDER_CHECK_IMAGES].astype(np.float32) / 255.0
    labels = None
    if vae.classes:
        if sorted(found.class_names) != sorted(class_names):
            log.info("%s: classes other than the model's; the order of the fused output is not checked", data)
            return
        index = [class_names.index(found.class_names[k]) for k in found.labels[:ORDER_CHECK_IMAGES]]
        labels = np.eye(vae.classes, dtype=np.float32)[index]
    errors = {}
    for order in FUSED_ORDERS:
        mean, _ = dataclasses.replace(vae, fused=order).encode(images, labels)
        errors[order] = float(np.mean((vae.decode(mean, labels) - images) ** 2))
    other = next(order for order in FUSED_ORDERS if order != vae.fused)
    if errors[other] < CLEARLY_BETTER * errors[vae.fused]:
        raise ExportError(f"{name}: on {data}, its fused output reads the other way round (decoding the half taken as "
                          f"z_mean reconstructs with mean squared error {errors[vae.fused]:.4f}, the other half "
                          f"{errors[other]:.4f}); pass --encoder-outputs {other}")  # fmt: skip
