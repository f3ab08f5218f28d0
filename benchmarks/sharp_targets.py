"""Issue 27's targets for several models in one run: the table of docs/experiments.md, measured afresh.

For every model: 10,000 images at T = 1 (no prior, no guidance; a conditional model's image i of class
i mod 10), against Fashion-MNIST's 10,000 test images in the features of the project's classifier
(vae_gen.train.classifier, cached under benchmarks/results/classifier/): Fréchet distance, precision and
recall (k = 3), class entropy of the predicted classes. For a conditional model also: class accuracy (the
share of its images the classifier puts in the class asked for, mean of the ten classes, and the lowest
class), and the CAS (the classifier trained on 60,000 of its images, image i of class i mod 10, tested on
the real test set; cached as benchmarks/class_accuracy.py caches it, so the two share their training).
Needs the train extra and Fashion-MNIST:

    python benchmarks/sharp_targets.py [MODEL ...] [--no-cas]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from class_accuracy import RESULTS, cas_classifier
from models_speed import DEFAULT_MODELS  # the old and the sharp models, the same list as their speeds

IMAGES, SEED = 10_000, 0
#: Issue 27's targets, by column.
TARGETS = {"FD": "<= 5", "precision": ">= 0.80", "recall": ">= 0.50", "class entropy": ">= 2.28",
           "class accuracy": ">= 90 %", "lowest class": ">= 80 %", "CAS": ">= 85 %"}  # fmt: skip


def scores(model: str, classifier, real_features: np.ndarray, test: tuple, cas: bool) -> dict[str, str]:
    """One row of the table for `model`."""
    import vae_gen
    from vae_gen.train.classifier import features, predict_classes
    from vae_gen.train.data import CLASS_NAMES
    from vae_gen.train.sample_quality import class_entropy, frechet_distance, precision_recall

    generator = vae_gen.Generator(model, use_prior=False)
    own = generator.classes
    asked = np.arange(IMAGES) % max(len(own), 1)
    images = generator.generate(IMAGES, SEED, label=[own[k] for k in asked] if own else None)
    fake = features(classifier, images)
    predicted = predict_classes(classifier, images)
    precision, recall = precision_recall(real_features, fake)
    row = {"FD": f"{frechet_distance(real_features, fake):.2f}", "precision": f"{precision:.3f}",
           "recall": f"{recall:.3f}", "class entropy": f"{class_entropy(predicted):.3f}"}  # fmt: skip
    if own:
        wanted = np.array([CLASS_NAMES.index(own[k]) for k in asked])
        per_class = {name: float((predicted[wanted == i] == i).mean()) for i, name in enumerate(CLASS_NAMES)}
        lowest = min(per_class, key=per_class.__getitem__)
        row["class accuracy"] = f"{100 * np.mean(list(per_class.values())):.1f} %"
        row["lowest class"] = f"{lowest} {100 * per_class[lowest]:.1f} %"
        if cas:
            _, record = cas_classifier(generator, CLASS_NAMES, 60_000, 1.0, 0.0, SEED, test, retrain=False)
            row["CAS"] = f"{100 * record['test_accuracy']:.1f} %"
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS, help="model names or folders")
    parser.add_argument("--no-cas", action="store_true", help="leave out the CAS (a classifier trained per model)")
    args = parser.parse_args(argv)

    from vae_gen.train.classifier import fashion_mnist_classifier, features
    from vae_gen.train.data import load_fashion_mnist

    classifier, _ = fashion_mnist_classifier(RESULTS / "classifier")
    data = load_fashion_mnist(None)
    real_features = features(classifier, data.test_images)
    rows = {model: scores(model, classifier, real_features, (data.test_images, data.test_labels), not args.no_cas)
            for model in args.models}  # fmt: skip
    columns = [c for c in TARGETS if any(c in row for row in rows.values())]
    print(f"{IMAGES:,} images per model at T = 1, seed {SEED}, against the test set\n")
    print("| model | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for model, row in rows.items():
        print(f"| `{Path(model).name}` | " + " | ".join(row.get(c, "") for c in columns) + " |")
    print("| target | " + " | ".join(TARGETS[c] for c in columns) + " |")


if __name__ == "__main__":
    main()
