"""Train a recipe as `vae-gen train --config` does, scoring the decoder's samples after every epoch: the run's
history.json then holds its sample-quality curve (Fréchet distance, precision, recall, class entropy on 2,000
images against Fashion-MNIST's test set, in the project classifier's features) beside its -ELBO. The scoring
only reads a copy of the decoder, so the trained model is the one the plain command makes.

Needs the train extra and Fashion-MNIST:

    python benchmarks/training_curve.py recipes/fashion-mnist-residual32-sharp.json runs/sharp [--images 2000]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("out", type=Path, help="the new run folder")
    parser.add_argument("--images", type=int, default=2000, help="generated images per score (default 2,000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from vae_gen.train.fit import train
    from vae_gen.train.sample_judge import fashion_mnist_judge
    from vae_gen.training.settings import TrainSettings

    judge = fashion_mnist_judge(RESULTS / "classifier", images=args.images)
    train(TrainSettings.from_file(args.recipe), args.out, judge=judge)


if __name__ == "__main__":
    main()
