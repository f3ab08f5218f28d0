"""Train a VAE and write its run folder.

A run folder holds what export needs and what a person needs to trust it:
encoder.keras and decoder.keras, settings.json (every setting, so the run
can be repeated), history.json (per-epoch train and test metrics),
metrics.json (the final test metrics, scored in numpy over the test set)
and the report pictures (report.py).
While training, the folder holds settings.json, an INCOMPLETE file (what
to do with an unfinished run) and checkpoint.npz, the state of the last
finished epoch (train/checkpoint.py), from which `resume` continues. The
final files are made in a hidden folder and moved in whole; the INCOMPLETE
file and the checkpoint go last, so a folder without them is finished.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vae_gen.core.constants import EVAL_SEED
from vae_gen.output.atomic import remove_stale_temporaries
from vae_gen.training.run_folder import (
    CHECKPOINT_FILE,
    INCOMPLETE_FILE,
    check_before_resuming,
    check_new_run_folder,
    incomplete_note,
    starting_folder,
)
from vae_gen.training.settings import FASHION_MNIST, TrainSettings, default_batch_size

from .adversarial import AdversarialVAE, build_discriminator
from .checkpoint import Checkpoint, Progress, SaveCheckpoint, load_checkpoint, restore
from .data import DataError
from .datasets import load_dataset
from .metrics import neg_elbo
from .model import VAE, build_networks, float32_copy

log = logging.getLogger(__name__)

#: Training steps per call into the compiled graph. Each call from Python costs a few milliseconds of
#: overhead, a noticeable share of a 60 ms step; the steps themselves are the same (no callback here
#: acts between batches).
STEPS_PER_EXECUTION = 16


class EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch (library code never prints)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        nan = float("nan")
        log.info(
            "epoch %d/%d: train -ELBO %.2f (rec %.2f, KL %.2f), test -ELBO %.2f (rec %.2f, KL %.2f), %.1fs",
            epoch + 1, self.epochs, logs.get("neg_elbo", nan), logs.get("reconstruction", nan), logs.get("kl", nan),
            logs.get("val_neg_elbo", nan), logs.get("val_reconstruction", nan), logs.get("val_kl", nan),
            time.perf_counter() - self.started,
        )  # fmt: skip
        if "discriminator" in logs:
            log.info("  discriminator %.3f, adversarial %.3f, adaptive scale %.2f",
                     logs["discriminator"], logs["adversarial"], logs["adaptive_scale"])  # fmt: skip
        if "class_loss" in logs:
            log.info("  the discriminator's class loss on real images %.3f", logs["class_loss"])


class KlWarmup(keras.callbacks.Callback):
    """Sets the VAE's KL weight to min(1, (epoch + 1) / warmup_epochs) times `kl_weight` before each epoch."""

    def __init__(self, warmup_epochs: int, kl_weight: float = 1.0):
        super().__init__()
        self.warmup_epochs = warmup_epochs
        self.kl_weight = kl_weight

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(min(1.0, (epoch + 1) / self.warmup_epochs) * self.kl_weight)


class KeepBest(keras.callbacks.Callback):
    """Remembers the weights of the epoch with the lowest test -ELBO, once the KL weight is 1."""

    def __init__(self, first_eligible_epoch: int):
        super().__init__()
        self.first_eligible_epoch = first_eligible_epoch
        self.best_epoch: int | None = None
        self.best_value = float("inf")
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_neg_elbo", float("inf"))
        if epoch >= self.first_eligible_epoch and value < self.best_value:
            self.best_epoch, self.best_value = epoch + 1, value
            self.best_weights = self.model.get_weights()

    def restore(self, model: keras.Model) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
            log.info("restored the weights of epoch %d (test -ELBO %.2f)", self.best_epoch, self.best_value)


#: Scores a decoder (a float32 keras.Model) between epochs: {"fd": ..., ...}, recorded in history.json.
Judge = Callable[[keras.Model], dict[str, float]]


class JudgeSamples(keras.callbacks.Callback):
    """Scores the decoder that would be saved (the weight average, when training adversarially) after each
    epoch with `judge`, so a run's history holds its sample-quality curve beside its -ELBO."""

    def __init__(self, judge: Judge, decoder: keras.Model):
        super().__init__()
        self.judge = judge
        self.copy = float32_copy(decoder)
        self.scores: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        average = getattr(self.model, "decoder_average_values", None)
        self.copy.set_weights(average() if average else self.model.decoder.get_weights())
        started = time.perf_counter()
        self.scores.append(self.judge(self.copy))
        log.info("  samples: %s (%.1fs)", ", ".join(f"{k} {v:.4g}" for k, v in self.scores[-1].items()),
                 time.perf_counter() - started)  # fmt: skip


def build_optimizer(settings: TrainSettings, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam with the run's learning-rate schedule and, if set, AdamW's decoupled weight decay."""
    learning_rate = settings.learning_rate
    if settings.lr_schedule == "cosine":
        steps = settings.epochs * steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(settings.learning_rate, steps, alpha=0.01)
    optimizer = keras.optimizers.Adam(learning_rate, weight_decay=settings.weight_decay or None)
    if settings.weight_decay:
        # Decay pulls weights towards 0, which suits kernels; biases have no reason to be near 0.
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training; the message says what the run folder keeps and how to continue."""


class StopOnSignal(keras.callbacks.Callback):
    """Ctrl-C and SIGTERM stop training between two calls into the compiled graph (about a second apart).

    Python runs a signal handler between any two bytecodes of the main thread; an exception raised there,
    inside TensorFlow's own Python code while tf.data's threads call back into ours, can end the process
    in a segmentation fault instead of an exit. So the handler only takes note, and the exception is raised
    here, at a point where Keras expects callbacks to fail. A second signal interrupts at once."""

    def __init__(self):
        super().__init__()
        self.requested = False
        self.previous: dict[int, Any] = {}

    def _note(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _check(self, batch=None, logs=None):
        if self.requested:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._note) for signum in (signal.SIGINT, signal.SIGTERM)}

    def on_train_end(self, logs=None):
        self.restore_handlers()
        self._check()  # a signal noted after the last check still stops the run

    def restore_handlers(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


def train(settings: TrainSettings, out_dir: Path, data_dir: Path | None = None, judge: Judge | None = None) -> dict[str, Any]:
    """Train per `settings` (validated when they were made) and write the run folder `out_dir`; returns the
    run summary. With `judge`, the decoder is scored after every epoch and the scores join history.json.

    The folder exists from the first epoch on, marked unfinished (an INCOMPLETE file) and holding the
    checkpoint of the last finished epoch; a stop raises TrainingInterrupted, and `resume` continues it."""
    out_dir = Path(out_dir)
    check_new_run_folder(out_dir)
    if settings.data != FASHION_MNIST:
        # Recorded absolute, so that export and report find the same folder from anywhere.
        settings = settings.replace(data=str(Path(settings.data).expanduser().resolve()))
    if settings.init_from is not None:
        # Recorded as given: a recipe run from the repository (models/NAME) then matches the card it made. The
        # installed package ships only the ONNX graphs, so a recipe names a checkout's folder, not a model name.
        starting_folder(settings.init_from)
    return _run(settings, out_dir, data_dir, judge, checkpoint=None)


def resume(run_dir: Path, data_dir: Path | None = None, judge: Judge | None = None) -> dict[str, Any]:
    """Continue the unfinished run `run_dir` from its last checkpoint, with the settings it recorded, and finish
    its folder; returns the run summary as `train` does. With deterministic settings, the weights end as an
    uninterrupted run's would."""
    run_dir = Path(run_dir)
    settings = check_before_resuming(run_dir)
    remove_stale_temporaries(run_dir / CHECKPOINT_FILE)
    for stale in run_dir.glob(f".{FINISHING}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE) if (run_dir / CHECKPOINT_FILE).is_file() else None
    if checkpoint is not None:
        log.info("resuming %s after epoch %s of %d", run_dir, checkpoint.progress.epochs_done, settings.epochs)  # checked next
    return _run(settings, run_dir, data_dir, judge, checkpoint)


def _run(
    settings: TrainSettings, out_dir: Path, data_dir: Path | None, judge: Judge | None, checkpoint: Checkpoint | None
) -> dict[str, Any]:
    data = load_dataset(settings, data_dir)
    n_train, x_test = len(data.train_images), data.test_images  # uint8: batches become floats in the pipeline
    classes = len(data.class_names) if settings.conditional else 0
    labelled = settings.conditional or settings.class_weight > 0  # the class weight teaches a class head
    if labelled and len(data.class_names) < 2:
        found = f"one class ({data.class_names[0]})" if data.class_names else "no classes"
        needs = "--conditional" if settings.conditional else f"--class-weight {settings.class_weight:g}"
        raise DataError(
            f"{needs} needs labelled images of two classes or more; {settings.data} has {found} "
            "(give a folder with one subfolder per class, or fashion-mnist)"
        )
    log.info("training on %d images, testing on %d, each %s", n_train, len(x_test), "x".join(map(str, data.image_shape)))
    batch_size = settings.batch_size or default_batch_size(n_train)
    if settings.batch_size is None:  # left to the data: recorded as the number it became
        settings = settings.replace(batch_size=batch_size)
        log.info("batch size %d, from the training set's size (--batch-size sets it)", batch_size)
    warn_if_too_few_steps(n_train, batch_size, settings.epochs)
    seen = {"train_images": n_train, "test_images": len(x_test), "test_files_sha256": data.test_files}
    done = None if checkpoint is None else checkpoint.progress.epochs_done
    if checkpoint is not None and (type(done) is not int or not 0 <= done <= settings.epochs):
        raise DataError(f"{out_dir / CHECKPOINT_FILE}: records {checkpoint.progress.epochs_done!r} epochs done, not 0 to "
                        f"{settings.epochs}; start a new run")  # fmt: skip
    if checkpoint is not None and checkpoint.progress.data != seen:
        raise DataError(f"{settings.data}: not the data {out_dir} was trained on so far ({checkpoint.progress.data}, "
                        f"now {seen}); a run continues only on its own data")  # fmt: skip

    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    vae = build_model(settings, data.image_shape, classes, starting_weights=checkpoint is None,
                      class_head=len(data.class_names) if settings.class_weight else 0)  # fmt: skip
    vae.compile(
        optimizer=build_optimizer(settings, steps_per_epoch=-(-n_train // batch_size)),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    state = vae.state_variables()
    progress = Progress(data=seen)
    keep_best = KeepBest(first_eligible_epoch=max(0, settings.kl_warmup_epochs - 1))
    if checkpoint is not None:
        restore(state, checkpoint.values, out_dir / CHECKPOINT_FILE)
        progress = checkpoint.progress
        keep_best.best_epoch, keep_best.best_value = progress.best_epoch, progress.best_value
        keep_best.best_weights = checkpoint.best_weights
    first_epoch = progress.epochs_done

    stop_on_signal = StopOnSignal()
    callbacks: list[keras.callbacks.Callback] = [EpochLog(settings.epochs)]
    judging = JudgeSamples(judge, vae.decoder) if judge is not None else None
    if judging is not None:
        callbacks.append(judging)
    if settings.kl_warmup_epochs:
        callbacks.append(KlWarmup(settings.kl_warmup_epochs, settings.kl_weight))
    if settings.keep_best:
        callbacks.append(keep_best)
    callbacks.append(SaveCheckpoint(out_dir / CHECKPOINT_FILE, state, progress, keep_best if settings.keep_best else None,
                                    judging))  # fmt: skip
    callbacks.append(stop_on_signal)  # last: an epoch that ended is checkpointed before a stop
    # The training batches carry the classes whenever something learns them (an unconditional model's class head
    # too); the test batches only when the model itself takes a label.
    train_set = _batches(data.train_images, batch_size, shuffle_seed=settings.seed,
                         labels=data.train_labels if labelled else None, classes=len(data.class_names),
                         first_epoch=first_epoch)  # fmt: skip
    test_labels = data.test_labels if classes else None
    test_set = _batches(x_test, batch_size, labels=test_labels, classes=classes)

    created = not out_dir.exists()
    try:
        if checkpoint is None:
            out_dir.mkdir(exist_ok=True)  # new, or empty: checked before
            _write_json(out_dir / "settings.json", settings.to_dict())
            (out_dir / INCOMPLETE_FILE).write_text(incomplete_note(out_dir), encoding="utf-8")
            log.info("run folder %s: unfinished until training ends, with a checkpoint at every epoch's end", out_dir)
        if first_epoch < settings.epochs:
            vae.fit(
                train_set,
                validation_data=test_set,
                initial_epoch=first_epoch,
                epochs=settings.epochs,
                shuffle=False,  # _batches shuffles, seeded
                verbose=0,
                callbacks=callbacks,
            )
        summary = _finish(vae, settings, data, classes, progress, out_dir, keep_best)
    except BaseException as exc:
        stop_on_signal.restore_handlers()  # fit skips on_train_end when a callback raises
        if progress.epochs_done == 0 and checkpoint is None:  # nothing worth continuing
            if created:
                shutil.rmtree(out_dir, ignore_errors=True)
            else:  # the empty folder the user made stays, empty
                for entry in out_dir.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            kept = "before its first epoch ended; nothing was kept"
        else:
            kept = (f"after epoch {progress.epochs_done} of {settings.epochs}; continue with "
                    f"`vae-gen train --resume {out_dir}`")  # fmt: skip
        if isinstance(exc, KeyboardInterrupt):
            raise TrainingInterrupted(f"training stopped {kept}") from None
        log.error("training failed %s", kept)
        raise
    log.info("test -ELBO %.2f nats per image; run folder %s", summary["test_metrics"]["neg_elbo"], out_dir)
    return summary


#: The hidden folder in which a finished run's files are made before they move into the run folder.
FINISHING = "finishing"


def _finish(
    vae: VAE, settings: TrainSettings, data: Any, classes: int, progress: Progress, out_dir: Path, keep_best: KeepBest
) -> dict[str, Any]:
    """Score, save and draw the trained networks; move the files into the run folder and only then drop its
    INCOMPLETE file and the checkpoint. A stop before that leaves the run resumable (at its last epoch)."""
    if settings.keep_best:
        keep_best.restore(vae)
    if isinstance(vae, AdversarialVAE):
        vae.use_decoder_average()
    # Score and save float32 networks: what export converts and the runtime runs.
    encoder, decoder = float32_copy(vae.encoder), float32_copy(vae.decoder)
    test_labels = data.test_labels if classes else None

    def given(x, label=None):
        return x if label is None else [x, np.eye(classes, dtype=np.float32)[label]]

    test_metrics = neg_elbo(
        data.test_images,
        encode=lambda x, label=None: tuple(t.numpy() for t in encoder(given(x, label), training=False)),
        decode=lambda z, label=None: decoder(given(z, label), training=False).numpy(),
        seed=EVAL_SEED,
        labels=test_labels,
    )
    summary = {
        "settings": settings.to_dict(),
        "dataset": {
            "source": data.source, "test_split": data.test_split, "image_shape": list(data.image_shape),
            "class_names": list(data.class_names), "train_images": len(data.train_images),
            "test_images": len(data.test_images), "test_files_sha256": data.test_files,
        },
        "test_metrics": test_metrics,
        "train_seconds": round(progress.train_seconds, 1),
        "best_epoch": keep_best.best_epoch if settings.keep_best else settings.epochs,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    staging = out_dir / f".{FINISHING}.{os.getpid()}.tmp"
    staging.mkdir()
    try:
        encoder.save(staging / "encoder.keras")
        decoder.save(staging / "decoder.keras")
        if isinstance(vae, AdversarialVAE):  # to go on training; export never reads it
            vae.discriminator.save(staging / "discriminator.keras")
        _write_json(staging / "history.json", progress.history)
        _write_json(staging / "metrics.json", summary)
        from .report import write_report  # matplotlib loads only here

        write_report(staging, data)
        # Each file arrives whole under its final name; the folder counts as finished only once INCOMPLETE goes.
        for made in sorted(staging.iterdir()):
            os.replace(made, out_dir / made.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    (out_dir / INCOMPLETE_FILE).unlink()
    return summary


#: Fewer optimizer steps than this in a whole run rarely train a VAE past blurry blobs (a 1,300-image folder at
#: the default batch of 128 for 20 epochs is 220 steps); the default recipe takes about 75,000.
FEW_STEPS = 2000


def warn_if_too_few_steps(n_train: int, batch_size: int, epochs: int) -> None:
    """Say how many optimizer steps the run takes, and warn when they are too few to learn much."""
    per_epoch = -(-n_train // batch_size)
    log.info("%d optimizer steps per epoch (batch %d), %d in all", per_epoch, batch_size, per_epoch * epochs)
    if per_epoch * epochs < FEW_STEPS:
        batch = n_train * epochs // FEW_STEPS  # the largest batch that reaches FEW_STEPS in as many epochs
        more_epochs = f"--epochs {-(-FEW_STEPS // per_epoch)}"
        remedy = f"--batch-size {batch}, or {more_epochs}" if batch else more_epochs
        log.warning(
            "warning: only %d optimizer steps in all (%d epochs of %d); a VAE needs a few thousand to draw more than "
            "blurred blobs: use %s", per_epoch * epochs, epochs, per_epoch, remedy,
        )  # fmt: skip


def build_model(
    settings: TrainSettings, image_shape: tuple[int, int, int], classes: int, starting_weights: bool = True,
    class_head: int = 0,
) -> VAE:
    """The VAE the settings ask for: its objective's model class, its weights new or from `init_from` (unless
    `starting_weights` is False: a resumed run's come from its checkpoint)."""
    encoder, decoder = build_networks(settings.arch, settings.latent_dim, image_shape, settings.precision, classes)
    if settings.init_from is not None and starting_weights:
        load_starting_weights(starting_folder(settings.init_from), encoder, decoder)
    vae = _vae_for(settings, encoder, decoder, image_shape, classes, class_head or classes)
    vae.kl_weight.assign(settings.kl_weight)  # the objective's; every reported -ELBO weighs the KL term by 1
    return vae


def _vae_for(
    settings: TrainSettings, encoder, decoder, image_shape: tuple[int, int, int], classes: int, class_head: int
) -> VAE:
    """The model class of the settings' objective around the two networks (`class_head`: the data's classes)."""
    if settings.objective == "adversarial":
        discriminator = build_discriminator(image_shape, classes, settings.discriminator_depth,
                                            class_head if settings.class_weight else 0)  # fmt: skip
        return AdversarialVAE(encoder, decoder, discriminator, settings.adversarial_weight, seed=settings.seed,
                              r1_gamma=settings.r1_gamma, class_weight=settings.class_weight,
                              judge_reconstructions=settings.adversarial_images == "both",
                              name=f"vae_{settings.arch}")  # fmt: skip
    return VAE(encoder, decoder, seed=settings.seed, name=f"vae_{settings.arch}")


def load_starting_weights(folder: Path, encoder: keras.Model, decoder: keras.Model) -> None:
    """Copy the weights of `folder`'s encoder.keras and decoder.keras into the new networks, which must be of
    the same shapes (one line naming the first that differs, otherwise)."""
    from vae_gen.training.rules import SettingError

    for name, network in (("encoder", encoder), ("decoder", decoder)):
        saved = keras.saving.load_model(folder / f"{name}.keras", compile=False, safe_mode=True)
        theirs, ours = saved.get_weights(), network.get_weights()
        shapes = [w.shape for w in theirs], [w.shape for w in ours]
        if shapes[0] != shapes[1]:
            raise SettingError("init_from", f"{folder / f'{name}.keras'} has weights of other shapes than this run's "
                                            f"{name} (another architecture, latent size, image shape or classes)")  # fmt: skip
        network.set_weights(theirs)
    log.info("starting from the weights of %s", folder)


def _batches(
    images: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    labels: np.ndarray | None = None,
    classes: int = 0,
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """Batches of `images` (uint8) as float32 in [0, 1]; with a seed, in an order drawn anew each epoch.
    With `labels` (int [n]), batches are (images, one-hot labels [batch, classes]): for a conditional VAE, or a
    discriminator's class head.

    Each batch is gathered from the numpy array itself, which stays the only
    copy of the images: `from_tensor_slices` would copy them into TensorFlow
    and a shuffle buffer would hold them again (benchmarks/train_memory.py:
    three copies instead of one), and a float32 set would be four times larger.
    """
    epochs = itertools.count(first_epoch)  # a resumed run continues the orders where it stopped

    def generate() -> Iterator[Any]:
        order = np.arange(len(images))
        if shuffle_seed is not None:
            order = np.random.default_rng([shuffle_seed, next(epochs)]).permutation(len(images))
        for lo in range(0, len(images), batch_size):
            chosen = order[lo : lo + batch_size]
            yield images[chosen] if labels is None else (images[chosen], labels[chosen])

    spec: Any = tf.TensorSpec((None, *images.shape[1:]), tf.uint8)
    if labels is not None:
        spec = (spec, tf.TensorSpec((None,), tf.int64))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
    # A generator's length is unknown to Keras, which would then cut epochs short: say it.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-len(images) // batch_size)))
    if labels is None:
        return dataset.map(_to_unit_floats)
    return dataset.map(lambda x, y: (_to_unit_floats(x), tf.one_hot(y, classes, dtype=tf.float32)))


def _to_unit_floats(images: tf.Tensor) -> tf.Tensor:
    """A uint8 batch as the VAE's input and target: float32 in [0, 1] (as data.to_float_images computes it)."""
    return tf.cast(images, tf.float32) / 255.0


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
