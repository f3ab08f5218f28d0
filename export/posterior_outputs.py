"""Which of a user's encoder outputs are z_mean and z_log_var: two or three outputs (by a sampling layer's
inputs, by their names, else by position), or one fused output holding both halves.

A log standard deviation is refused rather than taken for a log variance, and a fused output's order is
stated (z_mean first, as TensorFlow's CVAE tutorial splits it) unless the caller says the other.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import keras

from .convert import ExportError

log = logging.getLogger(__name__)

#: Words in an output's name that say which posterior parameter it is.
MEAN_NAMES = re.compile(r"mean|(^|_)mu($|_)", re.IGNORECASE)
LOG_VAR_NAMES = re.compile(r"log_?var", re.IGNORECASE)
#: A log standard deviation is not a log variance (it is half of one): such an output is refused, not guessed at.
LOG_STD_NAMES = re.compile(r"log_?sigma|log_?std", re.IGNORECASE)
#: An encoder output holding both posterior parameters: z_mean then z_log_var, or the other way round.
FUSED_ORDERS = {"fused": (0, 1), "fused-log-var-first": (1, 0)}

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
                              f"{', '.join(shape_text(t.shape) for t in outputs)}")  # fmt: skip
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
