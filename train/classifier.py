"""The project's own Fashion-MNIST classifier: the judge of generated images.

A small, well-known CNN in Keras 3: two convolution blocks (3x3 convolution,
batch norm, ReLU, 2x2 max-pooling), then a Dense(128) layer named `features`,
then a softmax over the ten classes. No dropout: trained for five epochs, the
network underfits, and dropout lowered its test accuracy (docs/classifier.md).

It measures how often a conditional model's images show the class asked for
and the classification accuracy score (trained on generated images, tested
on real ones); its `features` layer (the penultimate one) is the embedding of
a Fréchet distance.

The network takes uint8 pixels, 0 black to 255 white, and rescales them
itself, so a saved .keras file needs no preprocessing to go with it. Every
classifier starts from the same seeded weights and batch order
(CLASSIFIER_SEED), so two of them differ only by their training images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from vae_gen.core.constants import CLASSIFIER_BATCH, CLASSIFIER_EPOCHS, CLASSIFIER_SEED
from vae_gen.errors import InvalidArgumentError

log = logging.getLogger(__name__)

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
#: The penultimate layer, whose outputs `features` returns.
FEATURES_LAYER = "features"
FEATURE_DIM = 128
#: Adam's initial learning rate (Keras's default), decayed to zero over the training.
LEARNING_RATE = 1e-3
#: Images per forward pass when predicting.
PREDICT_BATCH = 500


def build_classifier(seed: int = CLASSIFIER_SEED) -> keras.Model:
    """The untrained CNN, its weights drawn from `seed`: uint8 [n, 28, 28, 1] -> class probabilities float32 [n, 10]."""
    keras.utils.set_random_seed(seed)
    # Every layer named: Keras's automatic names count up within a process, and `fingerprint` hashes this graph.
    inputs = keras.Input(IMAGE_SHAPE, dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, filters in enumerate((32, 64), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = keras.layers.BatchNormalization(name=f"norm{block}")(x)
        x = keras.layers.Activation("relu", name=f"relu{block}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(FEATURE_DIM, activation="relu", name=FEATURES_LAYER)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fashion_mnist_classifier")


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = CLASSIFIER_BATCH,
    seed: int = CLASSIFIER_SEED,
    deterministic: bool = True,
) -> tuple[keras.Model, float]:
    """A classifier trained with Adam (cosine-decayed) on uint8 images [n, 28, 28] (or [n, 28, 28, 1]) and labels 0..9 [n];
    returns it and the seconds its training took.

    `deterministic` turns on TensorFlow's op determinism for the rest of the
    process (as `vae-gen train` does), so the same call gives the same weights.
    """
    x = _as_input(images)
    y = np.asarray(labels)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise InvalidArgumentError(f"labels must be integers of shape ({len(x)},), got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise InvalidArgumentError(f"labels must lie in 0..{NUM_CLASSES - 1}, got {y.min()}..{y.max()}")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    model = build_classifier(seed)
    # Cosine decay to zero over the whole run: the last epochs settle the weights, worth more than extra epochs.
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=epochs * -(-len(x) // batch_size))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    # Keras shuffles each epoch with the generator that build_classifier seeded.
    model.fit(x, y.astype(np.int32), epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    seconds = time.perf_counter() - started
    log.info("classifier trained on %d images, %d epochs, in %.1f s", len(x), epochs, seconds)
    return model, seconds


def fingerprint(epochs: int = CLASSIFIER_EPOCHS, batch_size: int = CLASSIFIER_BATCH, seed: int = CLASSIFIER_SEED) -> str:
    """12 hex digits naming everything that makes a classifier but its images: architecture, optimizer, epochs,
    batch size, seed. A cached classifier is reused only under the same fingerprint."""
    recipe = {
        "architecture": build_classifier(seed).to_json(),
        "learning_rate": LEARNING_RATE, "schedule": "cosine", "epochs": epochs, "batch_size": batch_size, "seed": seed,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def train_cached(
    stem: str | Path,
    training_set: Callable[[], tuple[np.ndarray, np.ndarray]],
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    about: dict | None = None,
    retrain: bool = False,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = CLASSIFIER_BATCH,
) -> tuple[keras.Model, dict]:
    """The classifier saved at STEM.keras with its record STEM.json, or, when they are missing (or `retrain`),
    one trained on the (images, labels) that `training_set()` returns (called only then), tested on
    `test_images`/`test_labels`, and saved there.

    The record holds `about` (what the images were), the training settings and
    time, the test accuracy overall and per class, and the library versions.
    The caller puts what the images depend on into the stem: it is trusted.
    """
    stem = Path(stem)
    model_file, record_file = stem.with_name(stem.name + ".keras"), stem.with_name(stem.name + ".json")
    if not retrain and model_file.is_file() and record_file.is_file():
        log.info("classifier from %s", model_file)
        return load_classifier(model_file), json.loads(record_file.read_text())
    images, labels = training_set()
    model, seconds = train_classifier(images, labels, epochs=epochs, batch_size=batch_size)
    record = {
        **(about or {}),
        "train_images": len(images), "epochs": epochs, "batch_size": batch_size, "seed": CLASSIFIER_SEED,
        "fingerprint": fingerprint(epochs, batch_size), "train_seconds": round(seconds, 1),
        "test_images": len(test_images), "test_accuracy": accuracy(model, test_images, test_labels),
        "test_accuracy_per_class": per_class_accuracy(model, test_images, test_labels).tolist(),
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }  # fmt: skip
    stem.parent.mkdir(parents=True, exist_ok=True)
    # The record is written last: a model file without one is never taken for a finished classifier.
    partial = stem.with_name(f".{stem.name}.{os.getpid()}.partial.keras")
    save_classifier(model, partial)
    os.replace(partial, model_file)
    partial_record = stem.with_name(f".{stem.name}.{os.getpid()}.partial.json")
    partial_record.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial_record, record_file)
    return model, record


def fashion_mnist_classifier(
    cache_dir: str | Path, *, retrain: bool = False, data_dir: Path | None = None
) -> tuple[keras.Model, dict]:
    """The classifier trained on Fashion-MNIST's 60,000 training images and tested on its 10,000 test images,
    cached in `cache_dir` (see `train_cached`): the judge every measurement of generated images shares."""
    from .data import CLASS_NAMES, load_fashion_mnist

    data = load_fashion_mnist(data_dir)
    about = {"trained_on": "Fashion-MNIST training set", "classes": list(CLASS_NAMES)}
    stem = Path(cache_dir) / f"fashion-mnist-{fingerprint()}"
    return train_cached(
        stem, lambda: (data.train_images, data.train_labels), data.test_images, data.test_labels, about=about, retrain=retrain
    )


def save_classifier(model: keras.Model, path: str | Path) -> None:
    """Write the classifier to a .keras file."""
    model.save(Path(path))


def load_classifier(path: str | Path) -> keras.Model:
    """A classifier that `save_classifier` wrote."""
    return keras.saving.load_model(Path(path), compile=False, safe_mode=True)


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Class probabilities float32 [n, 10] (rows sum to 1) of uint8 images [n, 28, 28] or [n, 28, 28, 1]."""
    return _in_batches(model, images, batch_size, NUM_CLASSES)


def predict_classes(model: keras.Model, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """The most probable class of each image: int64 [n]."""
    return predict_proba(model, images, batch_size).argmax(axis=1)


def features(model: keras.Model, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """The penultimate layer's outputs (after its ReLU) of uint8 images: float32 [n, 128], each >= 0."""
    penultimate = keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output)
    return _in_batches(penultimate, images, batch_size, FEATURE_DIM)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = PREDICT_BATCH) -> float:
    """The share of images whose most probable class is their label."""
    return float((predict_classes(model, images, batch_size) == np.asarray(labels)).mean())


def per_class_accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """float64 [10]: for each class, the share of its images classified as it (NaN for a class with no images)."""
    labels = np.asarray(labels)
    hits = predict_classes(model, images, batch_size) == labels
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels, weights=hits, minlength=NUM_CLASSES) / counts


def _in_batches(model: keras.Model, images: np.ndarray, batch_size: int, width: int) -> np.ndarray:
    # A batch at a time: only one batch of the network's activations is ever in memory.
    x = _as_input(images)
    out = np.empty((len(x), width), np.float32)
    for lo in range(0, len(x), batch_size):
        out[lo : lo + batch_size] = np.asarray(model.predict_on_batch(x[lo : lo + batch_size]))
    return out


def _as_input(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise InvalidArgumentError(f"images must be uint8 (0 black .. 255 white), got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:] != IMAGE_SHAPE:
        raise InvalidArgumentError(f"images must have shape [n, 28, 28] or [n, 28, 28, 1], got {list(x.shape)}")
    return x
