"""Does a conditional model draw the class asked for? Measured with the project's own classifier.

The judge is the Fashion-MNIST CNN of vae_gen.train.classifier, trained once
on the 60,000 real training images and cached under
benchmarks/results/classifier/ (--retrain trains it again). Three tables:

  ceiling   the classifier's accuracy on the 10,000 real test images, per class and
            overall: what a generated image that looked real would score; and on
            the same images blurred (Gaussian, sigma --blur: 0.5, 0.7 pixels), how
            much of it a decoder as soft as a VAE's mean image can keep
  accuracy  --per-class images (1,000) of each class at each of --temperatures
            (1.0, 0.8, 0.7, 0.5) and each class guidance of --guidance (0, 1:
            vae_gen.sampling.guidance), generated with label=CLASS: the share the
            classifier puts in the class asked for, per class and on average;
            and the Fréchet distance of those 10,000 images to the real test
            set, in the classifier's features, the price of each setting in
            realism (the real training set's own FD is the floor)
  CAS       the classification accuracy score (Ravuri & Vinyals 2019): the same
            architecture, seed and epochs trained only on --cas-images (60,000)
            generated images, image i of class i mod 10, tested on the real test
            set, against the classifier trained on the real training set; at
            --cas-temperature and each guidance of --cas-guidance (0, 1)

The model must be class-conditional with Fashion-MNIST's ten classes; an
unconditional one is refused with one line. The CAS classifier is cached too,
keyed by the model's decoder checksum, seed, temperature, guidance and image count.
Needs the train extra:

    python benchmarks/class_accuracy.py [--model NAME|PATH] [--temperatures 1.0,0.8,0.7,0.5] [--guidance 0,1]
        [--per-class 1000] [--cas-images 60000] [--cas-temperature 1.0] [--cas-guidance 0,1] [--seed 0]
        [--retrain] [--classifier-only]
        [--json benchmarks/results/class_accuracy.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import vae_gen

RESULTS = Path(__file__).parent / "results"
DEFAULT_MODEL = "fashion-mnist-conditional32"


def percent(share: float) -> str:
    return f"{100 * share:.1f} %"


def conditional_generator(model: str, class_names: tuple[str, ...]):
    """The model's Generator, or exit with one line when it cannot judge it: not found, not conditional, other classes."""
    try:
        generator = vae_gen.Generator(model)
    except vae_gen.VaeGenError as exc:
        sys.exit(f"class_accuracy.py: {exc}")
    if not generator.classes:
        sys.exit(f"class_accuracy.py: {generator.name} is not class-conditional (it has no classes); give one with --model")
    if sorted(generator.classes) != sorted(class_names):
        sys.exit(f"class_accuracy.py: {generator.name}'s classes ({', '.join(generator.classes)}) are not Fashion-MNIST's")
    return generator


def setting_name(temperature: float, guidance: float) -> str:
    """A (temperature, guidance) setting as the tables and the JSON name it: "T=0.7 w=1"."""
    return f"T={temperature:g} w={guidance:g}"


def generated_accuracy(generator, classifier, class_names, settings, per_class: int, seed: int, real_features):
    """For each (temperature, guidance) setting: (shares, confusion, FD): the share of each class's images
    classified as it, in class_names order; how many of each class's images went to each class; the Fréchet
    distance of all of them to the real test set's `real_features`."""
    from vae_gen.train.classifier import features, predict_classes
    from vae_gen.train.sample_quality import frechet_distance

    found = {}
    for temperature, guidance in settings:
        shares, counts, images = [], [], []
        for index, name in enumerate(class_names):
            images.append(generator.generate(per_class, seed=seed, temperature=temperature, label=name, guidance=guidance))
            predicted = predict_classes(classifier, images[-1])
            shares.append(float((predicted == index).mean()))
            counts.append(np.bincount(predicted, minlength=len(class_names)).tolist())
        fd = frechet_distance(features(classifier, np.concatenate(images)), real_features)
        found[(temperature, guidance)] = (shares, counts, fd)
        print(f"  {setting_name(temperature, guidance)}: mean {percent(float(np.mean(shares)))}, FD {fd:.2f}", flush=True)
    return found


def blurred_accuracy(classifier, images: np.ndarray, labels: np.ndarray, sigmas) -> dict[float, list[float]]:
    """{sigma: per-class accuracy on the real images blurred by a Gaussian of `sigma` pixels (scipy's)}."""
    from scipy.ndimage import gaussian_filter

    from vae_gen.train.classifier import per_class_accuracy

    found = {}
    for sigma in sigmas:
        blurred = gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma))  # not across images
        found[sigma] = per_class_accuracy(classifier, np.clip(np.rint(blurred), 0, 255).astype(np.uint8), labels).tolist()
    return found


def reconstruction_accuracy(generator, classifier, class_names, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per class, the share of real test images whose reconstruction (the posterior mean, given the true label,
    decoded with it) the classifier puts in their class: what the decoder can render at best."""
    from vae_gen.train.classifier import predict_classes

    shares = []
    for index, name in enumerate(class_names):
        real = images[labels == index]
        z_mean, _ = generator.encode(real[..., None].astype(np.float32) / 255.0, label=name)
        predicted = predict_classes(classifier, generator.decode_uint8(z_mean, label=name))
        shares.append(float((predicted == index).mean()))
    return shares


def cas_classifier(generator, class_names, count: int, temperature: float, guidance: float, seed: int, test, retrain: bool):
    """The classifier trained on `count` generated images, image i of the generator's class i mod K."""
    from vae_gen.train.classifier import fingerprint, train_cached

    own = generator.classes
    # The generator's label i mod K, as the Fashion-MNIST index the classifier learns (its classes may be in another order).
    to_fashion = np.array([class_names.index(name) for name in own])

    def training_set():
        started = time.perf_counter()
        images = generator.generate(count, seed=seed, temperature=temperature, label=[i % len(own) for i in range(count)],
                                     guidance=guidance)
        print(f"  generated {count:,} images in {time.perf_counter() - started:.1f} s", flush=True)
        return images, to_fashion[np.arange(count) % len(own)]

    checksum = generator.card.decoder.sha256[:12]
    guided = f"-w{guidance:g}" if guidance else ""  # (unguided ones keep the names they were cached under)
    name = f"cas-{generator.name}-{checksum}-n{count}-seed{seed}-t{temperature:g}{guided}-{fingerprint()}"
    stem = RESULTS / "classifier" / name
    about = {
        "trained_on": f"{generator.name} generated images", "model_decoder_sha256": generator.card.decoder.sha256,
        "seed": seed, "temperature": temperature, "guidance": guidance, "label": "image i of class i mod K",
        "classes": list(own),
    }  # fmt: skip
    return train_cached(stem, training_set, *test, about=about, retrain=retrain)


def numbers(parser: argparse.ArgumentParser, option: str, text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        parser.error(f"{option}: not a comma-separated list of numbers: {text!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"a conditional model name or folder (default {DEFAULT_MODEL})")
    parser.add_argument("--temperatures", default="1.0,0.8,0.7,0.5", help="comma-separated (default 1.0,0.8,0.7,0.5)")
    parser.add_argument("--guidance", default="0,1", help="class guidance values, comma-separated (default 0,1)")
    parser.add_argument("--blur", default="0.5,0.7", help="sigmas of the blurred real test sets (default 0.5,0.7)")
    parser.add_argument("--per-class", type=int, default=1000, help="generated images per class and temperature")
    parser.add_argument("--cas-images", type=int, default=60000, help="generated training images of the CAS classifier")
    parser.add_argument("--cas-temperature", type=float, default=1.0)
    parser.add_argument("--cas-guidance", default="0,1", help="a CAS classifier for each, comma-separated (default 0,1)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--retrain", action="store_true", help="train the classifiers again instead of loading them")
    parser.add_argument("--classifier-only", action="store_true", help="only the classifier and its real test accuracy")
    parser.add_argument("--json", type=Path, default=RESULTS / "class_accuracy.json")
    args = parser.parse_args(argv)
    temperatures, guidances, cas_guidances, sigmas = (
        numbers(parser, option, text)
        for option, text in (("--temperatures", args.temperatures), ("--guidance", args.guidance),
                             ("--cas-guidance", args.cas_guidance), ("--blur", args.blur))
    )  # fmt: skip
    settings = [(t, w) for w in guidances for t in temperatures]

    from vae_gen.train.data import CLASS_NAMES

    # The model is checked before anything is trained: a wrong --model costs nothing.
    generator = None if args.classifier_only else conditional_generator(args.model, CLASS_NAMES)

    from vae_gen.train.classifier import fashion_mnist_classifier
    from vae_gen.train.data import load_fashion_mnist

    data = load_fashion_mnist(None)
    test = (data.test_images, data.test_labels)
    classifier, real = fashion_mnist_classifier(RESULTS / "classifier", retrain=args.retrain)
    print(
        f"classifier: trained on {real['train_images']:,} real images, {real['epochs']} epochs, "
        f"{real['train_seconds']:.1f} s on {real['cpu_count']} cores (TensorFlow {real['versions']['tensorflow']}); "
        f"real test accuracy {percent(real['test_accuracy'])}"
    )
    blurred = blurred_accuracy(classifier, *test, sigmas)
    results: dict = {"classifier": real, "blurred_accuracy": {f"{sigma:g}": shares for sigma, shares in blurred.items()}}
    if generator is not None:
        from vae_gen.train.classifier import features

        print(f"{generator.name}: {args.per_class:,} images per class, seed {args.seed}", flush=True)
        from vae_gen.train.sample_quality import frechet_distance

        real_features = features(classifier, data.test_images)
        # The floor: as many real training images as generated ones, against the same test set.
        floor = frechet_distance(features(classifier, data.train_images[: 10 * args.per_class]), real_features)
        found = generated_accuracy(generator, classifier, CLASS_NAMES, settings, args.per_class, args.seed, real_features)
        reconstructed = reconstruction_accuracy(generator, classifier, CLASS_NAMES, *test)
        cas = {}
        for guidance in cas_guidances:
            print(f"CAS: {args.cas_images:,} images, {setting_name(args.cas_temperature, guidance)}, seed {args.seed}",
                  flush=True)  # fmt: skip
            _, cas[guidance] = cas_classifier(generator, CLASS_NAMES, args.cas_images, args.cas_temperature, guidance,
                                              args.seed, test, args.retrain)  # fmt: skip
        results |= {
            "model": generator.name, "seed": args.seed, "per_class": args.per_class,
            "settings": [{"temperature": t, "guidance": w} for t, w in settings],
            "accuracy": {setting_name(*k): dict(zip(CLASS_NAMES, v[0], strict=True)) for k, v in found.items()},
            "mean_accuracy": {setting_name(*k): float(np.mean(v[0])) for k, v in found.items()},
            "fd": {setting_name(*k): v[2] for k, v in found.items()}, "fd_real_train": floor,
            "confusion": {setting_name(*k): v[1] for k, v in found.items()},
            "reconstruction_accuracy": dict(zip(CLASS_NAMES, reconstructed, strict=True)),
            "cas_classifier": {setting_name(args.cas_temperature, w): c for w, c in cas.items()},
            "cas_over_real": {setting_name(args.cas_temperature, w): c["test_accuracy"] / real["test_accuracy"]
                              for w, c in cas.items()},
        }  # fmt: skip

    print(f"\nAccuracy of the classifier on the real test set{'' if generator is None else ' and on generated images'}:\n")
    header = ["class", "real test images", *[f"blurred, sigma {sigma:g}" for sigma in sigmas]]
    if generator is not None:
        header += ["their reconstructions", *[f"generated, {setting_name(*k)}" for k in settings],
                   f"most often taken for ({setting_name(*settings[0])})"]  # fmt: skip
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for index, name in enumerate(CLASS_NAMES):
        row = [name, percent(real["test_accuracy_per_class"][index])] + [percent(blurred[s][index]) for s in sigmas]
        if generator is not None:
            counts = np.array(found[settings[0]][1][index])
            counts[index] = -1
            other = int(counts.argmax())
            row += [percent(reconstructed[index])] + [percent(found[k][0][index]) for k in settings]
            row += [f"{CLASS_NAMES[other]} ({counts[other]:,} of {args.per_class:,})"]
        print("| " + " | ".join(row) + " |")
    mean = ["**mean**", f"**{percent(real['test_accuracy'])}**", *[f"**{percent(float(np.mean(blurred[s])))}**" for s in sigmas]]
    if generator is not None:
        mean += [f"**{percent(float(np.mean(reconstructed)))}**"]
        mean += [f"**{percent(float(np.mean(found[k][0])))}**" for k in settings] + [""]
    print("| " + " | ".join(mean) + " |")

    if generator is not None:
        fds = [f"{found[k][2]:.2f}" for k in settings]
        print(f"| FD to the real test set | {floor:.2f} (training images) | " + "| " * len(sigmas) + "| "
              + " | ".join(fds) + " | |")  # fmt: skip
        print("\nClassification accuracy score: the classifier trained on generated images, tested on real ones:\n")
        columns = [f"trained on {args.cas_images:,} generated images, {setting_name(args.cas_temperature, w)}" for w in cas]
        print("| class | trained on the real training set | " + " | ".join(columns) + " |\n|" + "---|" * (2 + len(cas)))
        for index, name in enumerate(CLASS_NAMES):
            shares = [percent(c["test_accuracy_per_class"][index]) for c in cas.values()]
            print(f"| {name} | {percent(real['test_accuracy_per_class'][index])} | " + " | ".join(shares) + " |")
        totals = [f"**{percent(c['test_accuracy'])}**" for c in cas.values()]
        print(f"| **all** | **{percent(real['test_accuracy'])}** | " + " | ".join(totals) + " |")
        for w, c in cas.items():
            ratio = results["cas_over_real"][setting_name(args.cas_temperature, w)]
            print(f"\nCAS ({setting_name(args.cas_temperature, w)}) {percent(c['test_accuracy'])} = {ratio:.3f} of the "
                  "real-trained classifier's accuracy")  # fmt: skip

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
