"""Do a learned prior's samples look more like real images than N(0, I)'s? Measured with the project's classifier.

For a model folder with a prior graph, 10,000 images are generated with the prior and 10,000 with
`--prior none` (the same seed, the same decoder), and each set is compared with Fashion-MNIST's
10,000 test images in the penultimate-layer features of the project's own classifier
(vae_gen.train.classifier, cached under benchmarks/results/classifier/):

  FD         Fréchet distance of the features (lower is closer); the floor is the real training set's
             first 10,000 images against the test set
  entropy    of the classifier's predicted classes (max ln 10 = 2.303): a prior that drops classes shows
  precision  share of generated images inside the real images' k-NN manifold (Kynkäänniemi et al. 2019)
  recall     share of real images inside the generated images' manifold

Needs the train extra:

    python benchmarks/prior_quality.py --model MODEL_WITH_PRIOR [--more MODEL ...] [--images 10000] [--seed 0]
        [--temperature 1.0] [--k 3] [--json benchmarks/results/prior_quality.json]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model folder (or name) with a prior graph")
    parser.add_argument("--more", nargs="*", default=[], help="more models with priors, compared on the same terms")
    parser.add_argument("--images", type=int, default=10_000, help="generated images per set (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=3, help="neighbours of the precision/recall manifolds (default 3)")
    parser.add_argument("--json", type=Path, default=RESULTS / "prior_quality.json")
    args = parser.parse_args(argv)

    import vae_gen
    from vae_gen.train.classifier import fashion_mnist_classifier, features, predict_classes
    from vae_gen.train.data import load_fashion_mnist
    from vae_gen.train.sample_quality import class_entropy, frechet_distance, precision_recall

    classifier, record = fashion_mnist_classifier(RESULTS / "classifier")
    data = load_fashion_mnist()
    real = features(classifier, data.test_images)
    floor_images = data.train_images[: len(data.test_images)]
    rows = [("real training images (floor)", floor_images)]
    for model in [args.model, *args.more]:
        with_prior = vae_gen.Generator(model)
        if with_prior.card.prior is None:
            raise SystemExit(f"model {with_prior.name!r} has no prior graph; make one with vae-gen fit-prior")
        if not rows[1:]:
            none = vae_gen.Generator(model, use_prior=False)
            rows.append(("N(0, I) (--prior none)", none.generate(args.images, args.seed, temperature=args.temperature)))
        label = f"{with_prior.card.prior.kind} prior ({with_prior.name})"
        rows.append((label, with_prior.generate(args.images, args.seed, temperature=args.temperature)))

    table = []
    for name, images in rows:
        generated = features(classifier, images)
        precision, recall = precision_recall(real, generated, k=args.k)
        table.append({
            "images": name, "count": len(images), "fd": frechet_distance(generated, real),
            "class_entropy": class_entropy(predict_classes(classifier, images)), "precision": precision, "recall": recall,
        })  # fmt: skip
    print(f"classifier: {record['test_accuracy'] * 100:.2f} % on the real test set; features {real.shape[1]}; "
          f"seed {args.seed}, temperature {args.temperature:g}, k {args.k}")  # fmt: skip
    print(f"| images | n | FD to the test set | class entropy (max {math.log(10):.3f}) | precision | recall |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['images']} | {row['count']:,} | {row['fd']:.2f} | {row['class_entropy']:.3f} | "
              f"{row['precision']:.3f} | {row['recall']:.3f} |")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seed": args.seed, "temperature": args.temperature, "k": args.k, "rows": table}, indent=2))


if __name__ == "__main__":
    main()
