"""The parsers of the `vae-gen` commands that need the train extra: train, export, report, evaluate, quantize,
fit-prior, parity.

Each subcommand's options are declared here, by a function of its own, and
parse without TensorFlow, so `--help` and every refused option work without
the extra; `train` builds one option per TrainSettings field from the field's
rule and help (`add_setting_options`). What the commands do is in
`cli.training`, whose handlers these parsers name.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model.card_fields import DECODER_OUTPUTS
from ..training.rules import Rule
from ..training.settings import TrainSettings, option_of
from .args import image_shape, output_positions, positive_int, value_range
from .training import (
    cmd_evaluate,
    cmd_export,
    cmd_fit_prior,
    cmd_parity,
    cmd_quantize,
    cmd_report,
    cmd_train,
)

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
    train.set_defaults(run=cmd_train)


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
    export.set_defaults(run=cmd_export)


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="write a training run's report pictures (needs vae-gen[train])")
    report.add_argument("run_dir", type=Path, help="a folder written by `vae-gen train`")
    report.add_argument("--data-dir", type=Path, help="folder holding the Fashion-MNIST .gz files")
    report.set_defaults(run=cmd_report)


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
    evaluate.set_defaults(run=cmd_evaluate)


def _add_quantize(commands: Any, model_help: str) -> None:
    quantize = commands.add_parser(
        "quantize", help="copy a model folder in int8 (decoder, encoder weights), scored (needs vae-gen[train])"
    )
    quantize.add_argument("model_dir", help=model_help)
    quantize.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    quantize.add_argument("--name", help="model name (default: the --out folder's name)")
    quantize.add_argument("--description", help="one line for the model card")
    quantize.set_defaults(run=cmd_quantize)


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
    fit_prior.set_defaults(run=cmd_fit_prior)


def _add_parity(commands: Any) -> None:
    parity = commands.add_parser("parity", help="re-check a model folder's ONNX files against its Keras models")
    parity.add_argument("model_dir", type=Path, help="a model folder holding the Keras files it came from")
    parity.add_argument("--custom-objects", type=Path, metavar="FILE.py",
                        help="a Python file defining the custom layers (or Lambda functions) the Keras files use")
    parity.add_argument("--trust-code", action="store_true",
                        help="load the Keras files' Lambda code (needed for a folder exported with --trust-code)")
    parity.set_defaults(run=cmd_parity)


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
