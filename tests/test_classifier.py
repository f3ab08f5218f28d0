"""The project's Fashion-MNIST classifier (vae_gen.train.classifier) and benchmarks/class_accuracy.py's refusals.

The classifier trains one epoch on a slice of the training set: these tests check
its contract (shapes, dtypes, the features layer, saving, caching, seeding), not
its accuracy, which benchmarks/class_accuracy.py measures (docs/classifier.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

TRAIN_IMAGES = 512


@pytest.fixture(scope="module")
def data():
    from vae_gen.train.data import load_fashion_mnist

    return load_fashion_mnist(None, allow_download=False)


@pytest.fixture(scope="module")
def trained(data):
    from vae_gen.train.classifier import train_classifier

    model, seconds = train_classifier(data.train_images[:TRAIN_IMAGES], data.train_labels[:TRAIN_IMAGES], epochs=1)
    assert seconds > 0
    return model


def test_probabilities_classes_and_features_have_their_shapes_and_dtypes(trained, data):
    from vae_gen.train import classifier as c

    images = data.test_images[:37]
    probabilities = c.predict_proba(trained, images, batch_size=16)  # three batches, the last one short
    assert probabilities.shape == (37, c.NUM_CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
    classes = c.predict_classes(trained, images)
    assert classes.shape == (37,) and np.issubdtype(classes.dtype, np.integer)
    np.testing.assert_array_equal(classes, probabilities.argmax(axis=1))
    features = c.features(trained, images, batch_size=16)
    assert features.shape == (37, c.FEATURE_DIM) == (37, 128) and features.dtype == np.float32
    assert (features >= 0).all() and features.any()
    # [n, 28, 28] and [n, 28, 28, 1] are the same images.
    np.testing.assert_array_equal(c.predict_proba(trained, images[..., None], batch_size=16), probabilities)
    np.testing.assert_array_equal(c.features(trained, images[..., None], batch_size=16), features)
    assert 0.0 <= c.accuracy(trained, images, data.test_labels[:37]) <= 1.0
    per_class = c.per_class_accuracy(trained, images, data.test_labels[:37])
    assert per_class.shape == (c.NUM_CLASSES,)


def test_features_are_the_penultimate_layer(trained, data):
    """The output layer applied to the features gives the probabilities: nothing lies between them."""
    from vae_gen.train import classifier as c

    images = data.test_images[:20]
    output = trained.get_layer("probabilities")
    kernel, bias = (np.asarray(w) for w in output.get_weights())
    assert kernel.shape == (c.FEATURE_DIM, c.NUM_CLASSES)
    logits = c.features(trained, images) @ kernel + bias
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), c.predict_proba(trained, images), atol=1e-5)
    assert trained.get_layer(c.FEATURES_LAYER).units == 128


def test_save_and_load_give_the_same_predictions(trained, data, tmp_path):
    from vae_gen.train import classifier as c

    c.save_classifier(trained, tmp_path / "classifier.keras")
    loaded = c.load_classifier(tmp_path / "classifier.keras")
    images = data.test_images[:50]
    np.testing.assert_array_equal(c.predict_proba(loaded, images), c.predict_proba(trained, images))
    np.testing.assert_array_equal(c.features(loaded, images), c.features(trained, images))


def test_the_seed_fixes_the_weights(data):
    from vae_gen.train.classifier import build_classifier, train_classifier

    first, second = (np.concatenate([w.ravel() for w in build_classifier(seed).get_weights()]) for seed in (3, 3))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, np.concatenate([w.ravel() for w in build_classifier(4).get_weights()]))
    images, labels = data.train_images[:256], data.train_labels[:256]
    a, b = (train_classifier(images, labels, epochs=1)[0] for _ in range(2))
    np.testing.assert_array_equal(a.get_layer("features").get_weights()[0], b.get_layer("features").get_weights()[0])


def test_the_fingerprint_is_the_same_however_many_models_the_process_built():
    from vae_gen.train.classifier import build_classifier, fingerprint

    first = fingerprint()
    build_classifier()
    assert fingerprint() == first and len(first) == 12
    assert fingerprint(epochs=6) != first and fingerprint(seed=1) != first


def test_train_cached_trains_once_and_records_its_test_accuracy(data, tmp_path):
    from vae_gen.train.classifier import train_cached

    calls = []

    def training_set():
        calls.append(1)
        return data.train_images[:256], data.train_labels[:256]

    test = (data.test_images[:100], data.test_labels[:100])
    model, record = train_cached(tmp_path / "c", training_set, *test, about={"trained_on": "a slice"}, epochs=1)
    again, cached = train_cached(tmp_path / "c", training_set, *test, epochs=1)
    assert len(calls) == 1 and cached == record
    assert record["trained_on"] == "a slice" and record["train_images"] == 256 and record["test_images"] == 100
    assert 0.0 <= record["test_accuracy"] <= 1.0 and len(record["test_accuracy_per_class"]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.keras"]
    np.testing.assert_array_equal(again.predict_on_batch(test[0][:8, ..., None]), model.predict_on_batch(test[0][:8, ..., None]))


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((4, 28, 28), np.float32), np.zeros(4, np.uint8), "must be uint8"),
        (np.zeros((4, 28, 27), np.uint8), np.zeros(4, np.uint8), r"\[n, 28, 28\]"),
        (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 10]), r"0\.\.9"),
        (np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.uint8), "shape"),
    ],
)
def test_bad_training_input_is_refused(images, labels, message):
    from vae_gen import InvalidArgumentError
    from vae_gen.train.classifier import train_classifier

    with pytest.raises(InvalidArgumentError, match=message):
        train_classifier(images, labels, epochs=1)


def test_the_benchmark_refuses_an_unconditional_model_in_one_line():
    import class_accuracy

    with pytest.raises(SystemExit) as exit_info:
        class_accuracy.main(["--model", "fashion-mnist-residual32"])
    message = str(exit_info.value.code)
    assert "fashion-mnist-residual32 is not class-conditional" in message and "\n" not in message
