"""A decoder's samples scored between training epochs, for a run's sample-quality curve.

`fashion_mnist_judge` returns a function that decodes a fixed set of N(0, I)
latents (class i mod 10 for image i, when conditional) and scores the images
against Fashion-MNIST's test set in the project classifier's features: the
same measures as benchmarks/prior_quality.py, on fewer images (Fréchet
distance is biased upwards on small sets, so compare a curve with itself,
and final models with the benchmark's 10,000 images).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from .classifier import fashion_mnist_classifier, features, predict_classes
from .data import load_fashion_mnist
from .sample_quality import class_entropy, frechet_distance, precision_recall

#: Images per score: about 5 s on 2 cores, small next to an adversarial epoch.
JUDGE_IMAGES = 2000


def fashion_mnist_judge(
    classifier_cache: Path, images: int = JUDGE_IMAGES, seed: int = 0, data_dir: Path | None = None
) -> Callable[[keras.Model], dict[str, float]]:
    """decoder -> {"fd", "precision", "recall", "entropy"} of `images` samples against the 10,000 test images."""
    classifier, _ = fashion_mnist_classifier(classifier_cache, data_dir=data_dir)
    real = features(classifier, load_fashion_mnist(data_dir).test_images)

    def judge(decoder: keras.Model) -> dict[str, float]:
        latent_dim = int(decoder.inputs[0].shape[-1])
        z = np.random.default_rng(seed).standard_normal((images, latent_dim), dtype=np.float32)  # the same each epoch
        given: list[np.ndarray] | np.ndarray = z
        if len(decoder.inputs) == 2:
            classes = int(decoder.inputs[1].shape[-1])
            given = [z, np.eye(classes, dtype=np.float32)[np.arange(images) % classes]]
        decoded = decoder.predict(given, batch_size=500, verbose=0)
        pictures = np.rint(np.clip(decoded, 0.0, 1.0) * 255.0).astype(np.uint8)
        fake = features(classifier, pictures)
        precision, recall = precision_recall(real, fake)
        return {
            "fd": frechet_distance(real, fake),
            "precision": precision,
            "recall": recall,
            "entropy": class_entropy(predict_classes(classifier, pictures)),
        }

    return judge
