"""What the `vae-gen` commands that need the train extra do: train, export, report, evaluate, quantize,
fit-prior, parity.

Each handler takes the parsed arguments (cli.training_parsers), refuses what
it can before anything heavy loads, then checks for the train extra and only
then imports the training or export code; this is the one module of the
runtime that reaches vae_gen.train and vae_gen.export.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ..core.extras import quiet_tensorflow, require_train_extra
from ..errors import InvalidArgumentError
from ..model.card import load_verified
from ..model.store import resolve_model
from ..output.atomic import atomic_file
from ..training.rules import SettingError
from ..training.run_folder import check_before_resuming, check_before_training
from ..training.settings import FASHION_MNIST, TrainSettings, names, option_of


def settings_from_arguments(args: argparse.Namespace) -> TrainSettings:
    """--config's settings (or the defaults) with the options given on the command line over them."""
    base = TrainSettings.from_file(args.config) if args.config is not None else TrainSettings()
    try:
        return base.replace(**{name: getattr(args, name) for name in names() if hasattr(args, name)})
    except SettingError as exc:  # a rule between settings: say it with the option's name
        raise InvalidArgumentError(f"{option_of(exc.name)} {exc.problem}") from None


def _use_train_extra(args: argparse.Namespace) -> None:
    """Refuse the command without the train extra; otherwise keep TensorFlow's start-up chatter off unless -v."""
    require_train_extra(args.command)
    quiet_tensorflow(verbose=args.verbose)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume_training(args)
    if args.out is None:
        raise InvalidArgumentError("--out RUN: the run folder to create is required (or --resume RUN to continue one)")
    settings = settings_from_arguments(args)  # refused here, before TensorFlow loads
    try:
        check_before_training(settings, args.out)  # and these, in well under a second
    except SettingError as exc:
        raise InvalidArgumentError(f"{option_of(exc.name)} {exc.problem}") from None
    _use_train_extra(args)
    from ..train.fit import train

    logging.getLogger("vae_gen").setLevel(logging.INFO)  # one line per epoch is the point of this command
    return _trained(train(settings, args.out, data_dir=args.data_dir), args.out)


def _resume_training(args: argparse.Namespace) -> int:
    given = [option_of(name) for name in names() if hasattr(args, name)]
    given += ["--config"] * (args.config is not None) + ["--out"] * (args.out is not None)
    if given:
        raise InvalidArgumentError(f"{', '.join(given)}: --resume continues {args.resume} with the settings it "
                                   "recorded; give only --resume RUN (and --data-dir)")  # fmt: skip
    check_before_resuming(args.resume)  # before TensorFlow loads
    _use_train_extra(args)
    from ..train.fit import resume

    logging.getLogger("vae_gen").setLevel(logging.INFO)
    return _trained(resume(args.resume, data_dir=args.data_dir), args.resume)


def _trained(result: dict[str, Any], out: Path) -> int:
    settings = TrainSettings.from_record(result["settings"])
    m = result["test_metrics"]
    print(
        f"trained {settings.arch} VAE, latent {settings.latent_dim}, {settings.epochs} epochs -> {out}: "
        f"test -ELBO {m['neg_elbo']:.2f} (reconstruction {m['reconstruction']:.2f} + KL {m['kl']:.2f}) nats per image"
    )
    return 0


#: Options of `export` that only apply to your own Keras files (--decoder).
KERAS_FILE_OPTIONS = ("encoder", "custom_objects", "value_range", "image_shape", "encoder_outputs", "decoder_output",
                      "trust_code", "classes", "data")  # fmt: skip


def class_names(text: str) -> tuple[str, ...]:
    """--classes: a text file of one name per line (blank lines skipped), or names separated by commas."""
    path = Path(text)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"--classes {text}: cannot be read ({exc})") from None
        return tuple(line.strip() for line in lines if line.strip())
    return tuple(name.strip() for name in text.split(","))


def cmd_export(args: argparse.Namespace) -> int:
    if (args.run_dir is None) == (args.decoder is None):
        raise InvalidArgumentError("give a run folder (vae-gen export RUN_DIR --out MODEL) or your Keras files "
                                   "(--decoder DECODER.keras [--encoder ENCODER.keras]), not both")  # fmt: skip
    if args.run_dir is not None:
        if args.run_dir.is_file():
            raise InvalidArgumentError(f"{args.run_dir}: a file, not a run folder; to export your own Keras files, "
                                       f"use --decoder {args.run_dir} [--encoder ENCODER.keras]")  # fmt: skip
        given = [f"--{name.replace('_', '-')}" for name in KERAS_FILE_OPTIONS if getattr(args, name) is not None]
        if given:
            raise InvalidArgumentError(f"{', '.join(given)}: only for your own Keras files (--decoder); a run folder "
                                       "records all of it")  # fmt: skip
    _use_train_extra(args)
    from ..export.exporter import export_files, export_run

    if args.run_dir is not None:
        card = export_run(args.run_dir, args.out, name=args.name, description=args.description, data_dir=args.data_dir)
    else:
        card = export_files(
            args.decoder, args.out, encoder=args.encoder, custom_objects=args.custom_objects, name=args.name,
            description=args.description, value_range=args.value_range, image_shape=args.image_shape,
            encoder_outputs=args.encoder_outputs, decoder_output=args.decoder_output, unsafe=bool(args.trust_code),
            data=args.data, data_dir=args.data_dir,
            classes=None if args.classes is None else class_names(args.classes),
        )  # fmt: skip
    print(
        f"exported {card.name} -> {args.out}: parity max abs difference {card.parity['max_abs_diff']:.3g} "
        f"(tolerance {card.parity['tolerance']:g})"
    )
    return 0


def cmd_fit_prior(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..export.fit_prior import fit_prior

    card = fit_prior(
        args.model_dir, args.out, kind=args.kind, components=args.components, data=args.data, data_dir=args.data_dir,
        name=args.name, description=args.description,
    )  # fmt: skip
    prior = card.parity["prior"]
    print(f"wrote {args.out}: a {args.kind} prior, noise {card.prior.noise_dim} -> z {card.latent_dim}; parity max abs "
          f"difference {prior['max_abs_diff']:.3g} (tolerance {prior['tolerance']:g})")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..train.report import write_report

    for path in write_report(args.run_dir, data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..train.evaluate import evaluate

    folder = resolve_model(args.model_dir)
    data, images, labels = args.data or FASHION_MNIST, None, None
    training = load_verified(folder).training
    recorded = training.get("data")
    if args.data is None and isinstance(recorded, str) and recorded != FASHION_MNIST:
        data, images, labels = recorded_test_split(folder, training)
        print(f"scoring on the data the model was trained on ({data}); --data chooses other images")
    result = evaluate(
        folder, data, images=images, labels=labels, data_dir=args.data_dir, iw_samples=args.iw_samples,
        iw_images=args.iw_images, test_limit=args.test_limit,
    )  # fmt: skip
    print(result.table())
    report = args.report or Path(f"evaluation-{result.model}.json")
    with atomic_file(report) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {report}")
    return 0


def recorded_test_split(folder: Path, training: dict[str, Any]) -> tuple[str, Any, Any]:
    """(what, images, labels) of the test split the model in `folder` was scored on when it was trained: its
    card's recorded `training` settings read the same folder and hold out the same images (the split is seeded)."""
    from ..train.datasets import load_dataset

    settings = TrainSettings.from_record(training, f"{folder / 'model.json'} training")
    if not Path(settings.data).is_dir():
        raise InvalidArgumentError(f"{folder}: the model was trained on {settings.data}, which is no longer a folder; "
                                   "give the test images with --data DIR")  # fmt: skip
    dataset = load_dataset(settings)
    return f"{settings.data}: {dataset.test_split}", dataset.test_images, dataset.test_labels


def cmd_quantize(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..export.quantize import quantize_model
    from ..model.store import resolve_model

    card = quantize_model(resolve_model(args.model_dir), args.out, name=args.name, description=args.description)
    m = card.test_metrics
    print(
        f"quantized -> {args.out}: max |int8 - float32| {card.parity['max_abs_diff']:.3g} "
        f"(mean {card.parity['mean_abs_diff']:.3g}); test -ELBO {m['neg_elbo']:.2f} nats per image"
    )
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..export.parity import check_model_folder, load_custom_objects

    objects = load_custom_objects(args.custom_objects) if args.custom_objects is not None else None
    report = check_model_folder(args.model_dir, objects, unsafe=args.trust_code)
    print(report.summary())
    return 0
