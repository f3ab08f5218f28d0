"""A training run's checkpoint: everything needed to continue after its last finished epoch, exactly.

`vae-gen train` writes checkpoint.npz into the run folder at the end of
every epoch, whole or not at all (written beside it, then renamed). It holds
the value of every variable the run's next step reads: the networks' weights
(the discriminator's and the decoder's average too, when adversarial), the
random-number generators' states (the sampling layer's and the prior noise's),
the KL weight and the optimizers' step counts and moments; beside them, as
JSON, the rows of history.json so far, the training seconds so far, the best
epoch so far (and its weights, with keep_best) and which data the run saw.
Restored into a model built from the same settings, the next epoch computes
what it would have computed without the stop: with --deterministic, a resumed
run ends with the weights of an uninterrupted one, bit for bit.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from vae_gen.output.atomic import atomic_file

from .data import DataError

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What a run has done so far, beside its variables."""

    epochs_done: int = 0
    #: history.json's rows of the finished epochs.
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    best_epoch: int | None = None
    best_value: float = float("inf")
    #: The data the run trains on: its size and test files, checked again on resume.
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Checkpoint:
    progress: Progress
    values: list[np.ndarray]
    best_weights: list[np.ndarray] | None = None


def save_checkpoint(path: Path, variables: list[Any], progress: Progress, best_weights: list[np.ndarray] | None) -> None:
    """Write the checkpoint atomically: the variables' values, in order, and the progress as JSON."""
    arrays = {f"state_{i:05d}": np.asarray(v.numpy() if hasattr(v, "numpy") else v) for i, v in enumerate(variables)}
    for i, weight in enumerate(best_weights or ()):
        arrays[f"best_{i:05d}"] = np.asarray(weight)
    arrays["progress"] = np.array(json.dumps(asdict(progress)))
    savez: Any = np.savez  # (its stubs read a ** mapping as the allow_pickle flag)
    with atomic_file(path) as tmp, open(tmp, "wb") as stream:
        savez(stream, **arrays)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by save_checkpoint; DataError in one line when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            progress = Progress(**json.loads(str(stored["progress"])))
            values = [stored[key] for key in sorted(k for k in stored.files if k.startswith("state_"))]
            best = [stored[key] for key in sorted(k for k in stored.files if k.startswith("best_"))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); start a new run") from None
    return Checkpoint(progress, values, best or None)


def restore(variables: list[Any], values: list[np.ndarray], path: Path) -> None:
    """Assign the checkpoint's values to the run's variables, which must match in number, shape and dtype."""
    if len(values) != len(variables):
        raise DataError(f"{path}: holds {len(values)} variables, this run's model has {len(variables)}; it was written "
                        "by another version of vae-gen or for other settings")  # fmt: skip
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != value.shape or np.dtype(variable.dtype) != value.dtype:
            raise DataError(f"{path}: {variable.path} is {value.dtype}{list(value.shape)} there, "
                            f"{np.dtype(variable.dtype)}{list(variable.shape)} in this run's model")  # fmt: skip
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


class SaveCheckpoint(keras.callbacks.Callback):
    """At the end of every epoch, after the callbacks that add to its row (list it last): append the epoch's
    metrics to the history and write the checkpoint."""

    def __init__(self, path: Path, variables: list[Any], progress: Progress, keep_best: Any = None, judge: Any = None):
        super().__init__()
        self.path, self.variables, self.progress = path, variables, progress
        self.keep_best, self.judge = keep_best, judge
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {key: float(value) for key, value in (logs or {}).items()} | {"epoch": epoch + 1}
        if self.judge is not None:
            row |= {f"samples_{key}": value for key, value in self.judge.scores[-1].items()}
        now = time.perf_counter()
        self.progress.history.append(row)
        self.progress.epochs_done = epoch + 1
        self.progress.train_seconds += now - self.started
        best_weights = None
        if self.keep_best is not None:
            self.progress.best_epoch, self.progress.best_value = self.keep_best.best_epoch, self.keep_best.best_value
            best_weights = self.keep_best.best_weights
        save_checkpoint(self.path, self.variables, self.progress, best_weights)
        log.info("  checkpoint of epoch %d written (%.1fs)", epoch + 1, time.perf_counter() - now)
        self.started = time.perf_counter()  # writing the checkpoint is not training time
