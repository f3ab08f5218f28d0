"""Train a VAE and write its run folder.

A run folder holds what export needs and what a person needs to trust it:
encoder.keras and decoder.keras, settings.json (every setting, so the run
can be repeated), history.json (per-epoch train and test metrics),
metrics.json (the final test metrics, scored in numpy over the test set)
and the report pictures (report.py).
It is built in a temporary folder and renamed into place at the end, so an
interrupted run leaves nothing that looks finished.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vae_gen.atomic import atomic_folder
from vae_gen.constants import EVAL_SEED
from vae_gen.training_settings import FASHION_MNIST, TrainSettings, check_new_run_folder, starting_folder

from .adversarial import AdversarialVAE, build_discriminator
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


class KlWarmup(keras.callbacks.Callback):
    """Sets the VAE's KL weight to min(1, (epoch + 1) / warmup_epochs) before each epoch."""

    def __init__(self, warmup_epochs: int):
        super().__init__()
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(min(1.0, (epoch + 1) / self.warmup_epochs))


class KeepBest(keras.callbacks.Callback):
    """Remembers the weights of the epoch with the lowest test -ELBO, once the KL weight is 1."""

    def __init__(self, first_eligible_epoch: int):
        super().__init__()
        self.first_eligible_epoch = first_eligible_epoch
        self.best_epoch: int | None = None
        self.best_value = float("inf")
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_neg_elbo", float("inf"))
        if epoch >= self.first_eligible_epoch and value < self.best_value:
            self.best_epoch, self.best_value = epoch + 1, value
            self.best_weights = self.model.get_weights()

    def restore(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
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


def train(settings: TrainSettings, out_dir: Path, data_dir: Path | None = None, judge: Judge | None = None) -> dict[str, Any]:
    """Train per `settings` (validated when they were made) and write the run folder `out_dir`; returns the
    run summary. With `judge`, the decoder is scored after every epoch and the scores join history.json."""
    out_dir = Path(out_dir)
    check_new_run_folder(out_dir)
    if settings.data != FASHION_MNIST:
        # Recorded absolute, so that export and report find the same folder from anywhere.
        settings = settings.replace(data=str(Path(settings.data).expanduser().resolve()))
    if settings.init_from is not None:
        # Recorded as given: a recipe run from the repository (models/NAME) then matches the card it made. The
        # installed package ships only the ONNX graphs, so a recipe names a checkout's folder, not a model name.
        starting_folder(settings.init_from)

    data = load_dataset(settings, data_dir)
    n_train, x_test = len(data.train_images), data.test_images  # uint8: batches become floats in the pipeline
    classes = len(data.class_names) if settings.conditional else 0
    if settings.conditional and classes < 2:
        found = f"one class ({data.class_names[0]})" if data.class_names else "no classes"
        raise DataError(
            f"--conditional needs labelled images of two classes or more; {settings.data} has {found} "
            "(give a folder with one subfolder per class, or fashion-mnist)"
        )
    log.info("training on %d images, testing on %d, each %s", n_train, len(x_test), "x".join(map(str, data.image_shape)))
    warn_if_too_few_steps(n_train, settings)

    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    vae = build_model(settings, data.image_shape, classes)
    vae.compile(
        optimizer=build_optimizer(settings, steps_per_epoch=-(-n_train // settings.batch_size)),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    callbacks: list[keras.callbacks.Callback] = [EpochLog(settings.epochs)]
    judging = JudgeSamples(judge, vae.decoder) if judge is not None else None
    if judging is not None:
        callbacks.append(judging)
    if settings.kl_warmup_epochs:
        callbacks.append(KlWarmup(settings.kl_warmup_epochs))
    keep_best = KeepBest(first_eligible_epoch=max(0, settings.kl_warmup_epochs - 1))
    if settings.keep_best:
        callbacks.append(keep_best)
    train_labels, test_labels = (data.train_labels, data.test_labels) if classes else (None, None)
    train_set = _batches(data.train_images, settings.batch_size, shuffle_seed=settings.seed, labels=train_labels, classes=classes)
    test_set = _batches(x_test, settings.batch_size, labels=test_labels, classes=classes)

    started = time.perf_counter()
    history = vae.fit(
        train_set,
        validation_data=test_set,
        epochs=settings.epochs,
        shuffle=False,  # _batches shuffles, seeded
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - started
    if settings.keep_best:
        keep_best.restore()
    if isinstance(vae, AdversarialVAE):
        vae.use_decoder_average()
    # Score and save float32 networks: what export converts and the runtime runs.
    encoder, decoder = float32_copy(vae.encoder), float32_copy(vae.decoder)

    def given(x, label=None):
        return x if label is None else [x, np.eye(classes, dtype=np.float32)[label]]

    test_metrics = neg_elbo(
        x_test,
        encode=lambda x, label=None: tuple(t.numpy() for t in encoder(given(x, label), training=False)),
        decode=lambda z, label=None: decoder(given(z, label), training=False).numpy(),
        seed=EVAL_SEED,
        labels=test_labels,
    )
    summary = {
        "settings": settings.to_dict(),
        "dataset": {
            "source": data.source, "test_split": data.test_split, "image_shape": list(data.image_shape),
            "class_names": list(data.class_names), "train_images": n_train, "test_images": len(x_test),
            "test_files_sha256": data.test_files,
        },
        "test_metrics": test_metrics,
        "train_seconds": round(seconds, 1),
        "best_epoch": keep_best.best_epoch if settings.keep_best else settings.epochs,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    epochs = [
        {key: float(values[i]) for key, values in history.history.items()} | {"epoch": i + 1}
        for i in range(len(history.history["neg_elbo"]))
    ]
    if judging is not None:
        scored = zip(epochs, judging.scores, strict=True)
        epochs = [epoch | {f"samples_{key}": value for key, value in scores.items()} for epoch, scores in scored]

    if out_dir.exists():
        out_dir.rmdir()  # empty, checked above
    with atomic_folder(out_dir) as staging:
        encoder.save(staging / "encoder.keras")
        decoder.save(staging / "decoder.keras")
        if isinstance(vae, AdversarialVAE):  # to go on training; export never reads it
            vae.discriminator.save(staging / "discriminator.keras")
        _write_json(staging / "settings.json", settings.to_dict())
        _write_json(staging / "history.json", epochs)
        _write_json(staging / "metrics.json", summary)
        from .report import write_report  # matplotlib loads only here

        # In the staging folder: a run stopped while its pictures are drawn leaves nothing under the final name.
        write_report(staging, data)
    log.info("test -ELBO %.2f nats per image; run folder %s", test_metrics["neg_elbo"], out_dir)
    return summary


#: Fewer optimizer steps than this in a whole run rarely train a VAE past blurry blobs (a 1,300-image folder at
#: the default batch of 128 for 20 epochs is 220 steps); the default recipe takes about 75,000.
FEW_STEPS = 2000


def warn_if_too_few_steps(n_train: int, settings: TrainSettings) -> None:
    """Say how many optimizer steps the run takes, and warn when they are too few to learn much."""
    per_epoch = -(-n_train // settings.batch_size)
    log.info("%d optimizer steps per epoch (batch %d), %d in all", per_epoch, settings.batch_size, per_epoch * settings.epochs)
    if per_epoch * settings.epochs < FEW_STEPS:
        batch = n_train * settings.epochs // FEW_STEPS  # the largest batch that reaches FEW_STEPS in as many epochs
        epochs = f"--epochs {-(-FEW_STEPS // per_epoch)}"
        remedy = f"--batch-size {batch}, or {epochs}" if batch else epochs
        log.warning(
            "warning: only %d optimizer steps in all (%d epochs of %d); a VAE needs a few thousand to draw more than "
            "blurred blobs: use %s", per_epoch * settings.epochs, settings.epochs, per_epoch, remedy,
        )  # fmt: skip


def build_model(settings: TrainSettings, image_shape: tuple[int, int, int], classes: int) -> VAE:
    """The VAE the settings ask for: its objective's model class, its weights new or from `init_from`."""
    encoder, decoder = build_networks(settings.arch, settings.latent_dim, image_shape, settings.precision, classes)
    if settings.init_from is not None:
        load_starting_weights(starting_folder(settings.init_from), encoder, decoder)
    if settings.objective == "adversarial":
        return AdversarialVAE(encoder, decoder, build_discriminator(image_shape, classes), settings.adversarial_weight,
                              seed=settings.seed, name=f"vae_{settings.arch}")  # fmt: skip
    return VAE(encoder, decoder, seed=settings.seed, name=f"vae_{settings.arch}")


def load_starting_weights(folder: Path, encoder: keras.Model, decoder: keras.Model) -> None:
    """Copy the weights of `folder`'s encoder.keras and decoder.keras into the new networks, which must be of
    the same shapes (one line naming the first that differs, otherwise)."""
    from vae_gen.training_settings import SettingError

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
) -> tf.data.Dataset:
    """Batches of `images` (uint8) as float32 in [0, 1]; with a seed, in an order drawn anew each epoch.
    With `labels` (int [n]), batches are (images, one-hot labels [batch, classes]) for a conditional VAE.

    Each batch is gathered from the numpy array itself, which stays the only
    copy of the images: `from_tensor_slices` would copy them into TensorFlow
    and a shuffle buffer would hold them again (benchmarks/train_memory.py:
    three copies instead of one), and a float32 set would be four times larger.
    """
    epochs = itertools.count()

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
