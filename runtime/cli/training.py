"""The `vae-gen` commands that need the train extra: train, export, report, evaluate, quantize, parity.

Their arguments parse without TensorFlow (so --help always works); each
handler checks for the extra first and only then imports the training code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.extras import quiet_tensorflow, require_train_extra
from ..errors import InvalidArgumentError
from ..model.card import DECODER_OUTPUTS, load_verified
from ..model.store import resolve_model
from ..output.atomic import atomic_file
from ..training.rules import Rule, SettingError
from ..training.run_folder import check_before_resuming, check_before_training
from ..training.settings import FASHION_MNIST, TrainSettings, names, option_of
from .args import image_shape, output_positions, positive_int, value_range

#: The kinds of `vae-gen fit-prior` (vae_gen.export.fit_prior.KINDS), here without TensorFlow for --help.
PRIOR_KINDS = ("gmm", "two-stage")


def add_training_commands(commands: Any, model_help: str) -> None:
    """The subcommands, each added by its own function below."""
    _add_train(commands)
    _add_export(commands)
    _add_report(commands)
    _add_evaluate(commands, model_help)
    _add_quantize(commands, model_help)
    _add_fit_prior(commands, model_help)
    _add_parity(commands)


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a VAE on Fashion-MNIST or a folder of images (needs vae-gen[train])",
        description="Train a VAE on Fashion-MNIST or on a folder of your images. Settings come from --config "
        "(a recipe, or a run's settings.json), then from the options given, which override it; the rest take "
        "their defaults. The run folder holds a checkpoint of every finished epoch until training ends: "
        "`vae-gen train --resume RUN` continues a stopped run.",
    )
    train.add_argument("--config", type=Path, metavar="FILE.json",
                       help="a settings file: a recipe (recipes/NAME.json) or a run folder's settings.json")
    add_setting_options(train)
    train.add_argument("--data-dir", type=Path, help="where Fashion-MNIST's four .gz files are, if not found by itself")
    train.add_argument("--out", type=Path, help="run folder to create")
    train.add_argument("--resume", type=Path, metavar="RUN",
                       help="continue the stopped run RUN from its last finished epoch, with the settings it recorded")
    train.set_defaults(run=_cmd_train)


def _add_export(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="export a training run, or your own Keras VAE, to an ONNX model folder (needs vae-gen[train])",
        description="Export a run folder (vae-gen export RUN_DIR --out MODEL) or your own Keras files "
        "(vae-gen export --decoder D.keras [--encoder E.keras] --out MODEL) to ONNX, behind the parity gate.",
    )
    export.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR", help="a run folder written by `vae-gen train`")
    export.add_argument("--decoder", type=Path, metavar="DECODER.keras",
                        help="your decoder: one input z [batch, latent], images [batch, H, W(, C)] or flat out")
    export.add_argument("--encoder", type=Path, metavar="ENCODER.keras",
                        help="your encoder (optional): images in, [z_mean, z_log_var], [z_mean, z_log_var, z] or one "
                             "fused [batch, 2 x latent] out")  # fmt: skip
    export.add_argument("--custom-objects", type=Path, metavar="FILE.py",
                        help="a Python file defining the custom layers your models use (a Sampling layer, say), or "
                             "the named functions of their Lambda layers")  # fmt: skip
    export.add_argument("--value-range", type=value_range, metavar="{0,1|-1,1}",
                        help="the decoder's output range, when its last activation is not sigmoid or tanh")
    export.add_argument("--image-shape", type=image_shape, metavar="H,W,C",
                        help="the image a flat decoder output [batch, H*W*C] holds")
    export.add_argument("--encoder-outputs", type=output_positions, metavar="MEAN,LOG_VAR|fused|fused-log-var-first",
                        help="positions of z_mean and z_log_var among the encoder's outputs (default: by name, else "
                             "0,1); fused: one output [batch, 2 x latent], z_mean then z_log_var (the default for "
                             "such an output; checked on --data when given), fused-log-var-first: the other order")  # fmt: skip
    export.add_argument("--decoder-output", choices=DECODER_OUTPUTS,
                        help="logits: the decoder's loss applied the sigmoid (the exported graph applies it); "
                             "default: its values are the images")  # fmt: skip
    export.add_argument("--trust-code", action="store_true", default=None,
                        help="load Lambda layers' Python code from your .keras files (Keras's safe_mode=False); "
                             "recorded in the model card, so `vae-gen parity` asks for it again")  # fmt: skip
    export.add_argument("--classes", metavar="NAME,NAME,...|FILE",
                        help="a conditional VAE's class names in label order: comma-separated, or a text file with one "
                             "name per line; with them, a one-input decoder takes concat(z, label) and a one-input "
                             "encoder may take the label tiled over the image as extra channels")  # fmt: skip
    export.add_argument("--data", metavar="DIR|fashion-mnist",
                        help="score the exported model on these test images (default: the run's; none for your own files)")
    export.add_argument("--data-dir", type=Path, help="where Fashion-MNIST's four .gz files are, if not found by itself")
    export.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    export.add_argument("--name", help="model name (default: the --out folder's name)")
    export.add_argument("--description", default="", help="one line for the model card")
    export.set_defaults(run=_cmd_export)


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="write a training run's report pictures (needs vae-gen[train])")
    report.add_argument("run_dir", type=Path, help="a folder written by `vae-gen train`")
    report.add_argument("--data-dir", type=Path, help="folder holding the Fashion-MNIST .gz files")
    report.set_defaults(run=_cmd_report)


def _add_evaluate(commands: Any, model_help: str) -> None:
    evaluate = commands.add_parser("evaluate", help="score a model folder on the test set (needs vae-gen[train])")
    evaluate.add_argument("model_dir", nargs="?", help=model_help)
    evaluate.add_argument("--iw-samples", type=positive_int, default=50,
                          help="posterior samples per image of the importance-weighted NLL (default 50)")
    evaluate.add_argument("--iw-images", type=positive_int, default=1000,
                          help="test images for the importance-weighted NLL (default the first 1000)")
    evaluate.add_argument("--test-limit", type=positive_int, help="score only the first N test images")
    evaluate.add_argument("--data", metavar="DIR|fashion-mnist",
                          help="test images: fashion-mnist, or a folder of images of the model's shape (its test/ "
                               "subfolder when it has train/ and test/); default: the test split of the data the "
                               "model was trained on, as its model.json records it (else fashion-mnist)")
    evaluate.add_argument("--data-dir", type=Path, help="where Fashion-MNIST's four .gz files are, if not found by itself")
    evaluate.add_argument("--report", type=Path, help="JSON report to write (default: evaluation-NAME.json here)")
    evaluate.set_defaults(run=_cmd_evaluate)


def _add_quantize(commands: Any, model_help: str) -> None:
    quantize = commands.add_parser(
        "quantize", help="copy a model folder in int8 (decoder, encoder weights), scored (needs vae-gen[train])"
    )
    quantize.add_argument("model_dir", help=model_help)
    quantize.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    quantize.add_argument("--name", help="model name (default: the --out folder's name)")
    quantize.add_argument("--description", help="one line for the model card")
    quantize.set_defaults(run=_cmd_quantize)


def _add_fit_prior(commands: Any, model_help: str) -> None:
    fit_prior = commands.add_parser(
        "fit-prior",
        help="learn a model's latent distribution and write a copy with a prior graph (needs vae-gen[train])",
        description="Fit a prior on the posteriors of the model's training images and write a new model folder: "
        "the same decoder and encoder, plus prior.onnx mapping N(0, I) noise to latents.",
    )
    fit_prior.add_argument("model_dir", help=model_help)
    fit_prior.add_argument("--kind", choices=PRIOR_KINDS, default="gmm",
                           help="gmm: a full-covariance Gaussian mixture (default); two-stage: a second VAE on the latents")
    fit_prior.add_argument("--components", type=positive_int, default=10, help="mixture components, for gmm (default 10)")
    fit_prior.add_argument("--data", metavar="DIR|fashion-mnist",
                           help="training images to fit on (default: those the model was trained on)")
    fit_prior.add_argument("--data-dir", type=Path, help="where Fashion-MNIST's four .gz files are, if not found by itself")
    fit_prior.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    fit_prior.add_argument("--name", help="model name (default: the --out folder's name)")
    fit_prior.add_argument("--description", help="one line for the model card")
    fit_prior.set_defaults(run=_cmd_fit_prior)


def _add_parity(commands: Any) -> None:
    parity = commands.add_parser("parity", help="re-check a model folder's ONNX files against its Keras models")
    parity.add_argument("model_dir", type=Path, help="a model folder holding the Keras files it came from")
    parity.add_argument("--custom-objects", type=Path, metavar="FILE.py",
                        help="a Python file defining the custom layers (or Lambda functions) the Keras files use")
    parity.add_argument("--trust-code", action="store_true",
                        help="load the Keras files' Lambda code (needed for a folder exported with --trust-code)")
    parity.set_defaults(run=_cmd_parity)


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainSettings field, with its rule and help; absent from the namespace unless given."""
    defaults = TrainSettings()
    for spec in dataclasses.fields(TrainSettings):
        rule, default = spec.metadata["rule"], getattr(defaults, spec.name)
        how: dict[str, Any] = (
            {"action": argparse.BooleanOptionalAction}
            if isinstance(default, bool)
            else {"type": _argparse_type(rule), "metavar": rule.metavar}
        )
        shown = "all" if default is None else ("on" if default else "off") if isinstance(default, bool) else default
        help_text = spec.metadata["help"]
        if "default" not in help_text:  # some helps say what their default means themselves
            help_text += f" (default {shown})"
        parser.add_argument(option_of(spec.name), dest=spec.name, default=argparse.SUPPRESS, help=help_text, **how)
    # The spelling of earlier versions, kept: it is in many a shell history.
    parser.add_argument(
        "--nondeterministic",
        dest="deterministic",
        action="store_false",
        default=argparse.SUPPRESS,
        help="the same as --no-deterministic",
    )


def _argparse_type(rule: Rule) -> Callable[[str], Any]:
    """Parse and check an option's text with its setting's rule, for argparse's own one-line message."""

    def parse(text: str) -> Any:
        try:
            return rule.check(rule.parse(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


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


def _cmd_train(args: argparse.Namespace) -> int:
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


def _cmd_export(args: argparse.Namespace) -> int:
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


def _cmd_fit_prior(args: argparse.Namespace) -> int:
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


def _cmd_report(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..train.report import write_report

    for path in write_report(args.run_dir, data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
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


def _cmd_quantize(args: argparse.Namespace) -> int:
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


def _cmd_parity(args: argparse.Namespace) -> int:
    _use_train_extra(args)
    from ..export.parity import check_model_folder, load_custom_objects

    objects = load_custom_objects(args.custom_objects) if args.custom_objects is not None else None
    report = check_model_folder(args.model_dir, objects, unsafe=args.trust_code)
    print(report.summary())
    return 0
