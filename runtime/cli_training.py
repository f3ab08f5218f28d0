"""The `vae-gen` commands that need the train extra: train, export, report, evaluate, quantize, parity.

Their arguments parse without TensorFlow (so --help always works); each
handler checks for the extra first and only then imports the training code.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .atomic import atomic_file
from .cli_args import (
    fraction_below_one,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed_number,
)
from .errors import InvalidArgumentError
from .extras import require_train_extra

#: The architectures whose decoder depth --decoder-blocks and --decoder-hidden set, and whose encoder's last map
#: --encoder-map sets; train.model.DEEP_DECODERS and MAPPED_ENCODERS, named here so that the arguments are checked
#: before TensorFlow loads (a test keeps them in step).
DEEPENABLE_ARCHS = ("residual",)


def add_training_commands(commands, model_help: str) -> None:
    train = commands.add_parser("train", help="train a VAE on Fashion-MNIST (needs vae-gen[train])")
    train.add_argument("--arch", choices=["dense", "conv", "residual"], default="dense",
                       help="model architecture (default dense)")
    train.add_argument("--latent-dim", type=positive_int, default=2, help="latent size (default 2)")
    train.add_argument("--epochs", type=positive_int, default=30, help="training epochs (default 30)")
    train.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    train.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=non_negative_float, default=0.0,
                       help="decoupled weight decay of the kernels, as in AdamW (default 0: off)")
    train.add_argument("--seed", type=seed_number, default=0, help="seed of weights, shuffling and sampling (default 0)")
    train.add_argument("--data-dir", type=Path, help="folder holding the Fashion-MNIST .gz files")
    train.add_argument("--train-limit", type=positive_int, help="use only the first N training images")
    train.add_argument("--test-limit", type=positive_int, help="use only the first N test images")
    train.add_argument("--kl-warmup", type=non_negative_int, default=0, metavar="EPOCHS",
                       help="raise the KL weight linearly to 1 over this many epochs (default 0: off)")
    train.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                       help="learning-rate schedule (default constant)")
    train.add_argument("--keep-best", action="store_true",
                       help="keep the weights of the epoch with the lowest test -ELBO")
    train.add_argument("--nondeterministic", action="store_true",
                       help="faster multi-threaded kernels (conv: about 3.5x on 2 cores); results then vary "
                            "in the last digits run to run")
    train.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32",
                       help="arithmetic of training (default float32); mixed_bfloat16 is about 1.75x faster on "
                            "CPUs with AMX or AVX-512 BF16, and the saved models are float32 either way")
    train.add_argument("--mirror", action="store_true",
                       help="mirror left-right, at random, training images of the classes that look the same "
                            "mirrored (tops, dresses, coats, shirts, bags; not shoes or trousers)")
    train.add_argument("--decoder-blocks", type=positive_int, default=1, metavar="N",
                       help="residual blocks per decoder resolution, --arch residual only (default 1)")
    train.add_argument("--decoder-hidden", type=positive_int, nargs="+", default=[], metavar="UNITS",
                       help="hidden Dense layers of these widths between z and the decoder's first feature map, "
                            "--arch residual only (default: none)")
    train.add_argument("--encoder-noise", type=non_negative_float, default=0.0, metavar="SIGMA",
                       help="add N(0, SIGMA^2) noise to the encoder's input pixels while training, a regularizer "
                            "(the decoder still reconstructs the clean image; default 0: off)")
    train.add_argument("--ema", type=fraction_below_one, default=0.0, metavar="MOMENTUM",
                       help="test, keep and save an exponential moving average of the weights with this momentum "
                            "per step, e.g. 0.999 (default 0: off, the last step's weights)")
    train.add_argument("--encoder-map", type=int, choices=[7, 4], default=7, metavar="{7,4}",
                       help="side of the encoder's last feature map, read by its Dense layer; 4 adds a stride-2 "
                            "convolution and trains faster, --arch residual only (default 7)")
    train.add_argument("--out", type=Path, required=True, help="run folder to create")
    train.set_defaults(run=_cmd_train)

    export = commands.add_parser("export", help="export a training run to an ONNX model folder (needs vae-gen[train])")
    export.add_argument("run_dir", type=Path, help="a folder written by `vae-gen train`")
    export.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    export.add_argument("--name", help="model name (default: the --out folder's name)")
    export.add_argument("--description", default="", help="one line for the model card")
    export.set_defaults(run=_cmd_export)

    report = commands.add_parser("report", help="write a training run's report pictures (needs vae-gen[train])")
    report.add_argument("run_dir", type=Path, help="a folder written by `vae-gen train`")
    report.add_argument("--data-dir", type=Path, help="folder holding the Fashion-MNIST .gz files")
    report.set_defaults(run=_cmd_report)

    evaluate = commands.add_parser("evaluate", help="score a model folder on the test set (needs vae-gen[train])")
    evaluate.add_argument("model_dir", nargs="?", help=model_help)
    evaluate.add_argument("--iw-samples", type=positive_int, default=50,
                          help="posterior samples per image of the importance-weighted NLL (default 50)")
    evaluate.add_argument("--iw-images", type=positive_int, default=1000,
                          help="test images for the importance-weighted NLL (default the first 1000)")
    evaluate.add_argument("--test-limit", type=positive_int, help="score only the first N test images")
    evaluate.add_argument("--data-dir", type=Path, help="folder holding the Fashion-MNIST .gz files")
    evaluate.add_argument("--report", type=Path, help="JSON report to write (default: evaluation-NAME.json here)")
    evaluate.set_defaults(run=_cmd_evaluate)

    quantize = commands.add_parser("quantize", help="copy a model folder in int8 (decoder, encoder weights), scored (needs vae-gen[train])")
    quantize.add_argument("model_dir", help=model_help)
    quantize.add_argument("--out", type=Path, required=True, help="model folder to create (must not exist)")
    quantize.add_argument("--name", help="model name (default: the --out folder's name)")
    quantize.add_argument("--description", help="one line for the model card")
    quantize.set_defaults(run=_cmd_quantize)

    parity = commands.add_parser("parity", help="re-check a model folder's ONNX files against its Keras models")
    parity.add_argument("model_dir", type=Path, help="a model folder holding decoder.keras and encoder.keras")
    parity.set_defaults(run=_cmd_parity)


def _cmd_train(args: argparse.Namespace) -> int:
    if args.decoder_blocks != 1 and args.arch not in DEEPENABLE_ARCHS:
        raise InvalidArgumentError(f"--decoder-blocks {args.decoder_blocks}: only --arch {', '.join(DEEPENABLE_ARCHS)} "
                                   f"has them; --arch {args.arch} takes 1")
    if args.decoder_hidden and args.arch not in DEEPENABLE_ARCHS:
        raise InvalidArgumentError(f"--decoder-hidden {' '.join(map(str, args.decoder_hidden))}: only --arch "
                                   f"{', '.join(DEEPENABLE_ARCHS)} has hidden layers; --arch {args.arch} has none")
    if args.encoder_map != 7 and args.arch not in DEEPENABLE_ARCHS:
        raise InvalidArgumentError(f"--encoder-map {args.encoder_map}: only --arch {', '.join(DEEPENABLE_ARCHS)} has it")
    require_train_extra("train")
    from .train.fit import TrainSettings, train

    logging.getLogger("vae_gen").setLevel(logging.INFO)  # one line per epoch is the point of this command

    settings = TrainSettings(
        arch=args.arch,
        latent_dim=args.latent_dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=args.seed,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        kl_warmup_epochs=args.kl_warmup,
        lr_schedule=args.lr_schedule,
        keep_best=args.keep_best,
        deterministic=not args.nondeterministic,
        precision=args.precision,
        mirror=args.mirror,
        decoder_blocks=args.decoder_blocks,
        decoder_hidden=tuple(args.decoder_hidden),
        encoder_noise=args.encoder_noise,
        ema_momentum=args.ema,
        encoder_map=args.encoder_map,
    )
    result = train(settings, args.out, data_dir=args.data_dir)
    m = result["test_metrics"]
    print(
        f"trained {args.arch} VAE, latent {args.latent_dim}, {args.epochs} epochs -> {args.out}: "
        f"test -ELBO {m['neg_elbo']:.2f} (reconstruction {m['reconstruction']:.2f} + KL {m['kl']:.2f}) nats per image"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    require_train_extra("export")
    from .export.exporter import export_run

    card = export_run(args.run_dir, args.out, name=args.name, description=args.description)
    print(
        f"exported {card.name} -> {args.out}: parity max abs difference {card.parity['max_abs_diff']:.3g} "
        f"(tolerance {card.parity['tolerance']:g})"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    require_train_extra("report")
    from .train.report import write_report

    for path in write_report(args.run_dir, args.data_dir):
        print(f"wrote {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    require_train_extra("evaluate")
    from .train.evaluate import evaluate

    result = evaluate(args.model_dir, args.data_dir, args.iw_samples, args.iw_images, args.test_limit)
    print(result.table())
    report = args.report or Path(f"evaluation-{result.model}.json")
    with atomic_file(report) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {report}")
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    require_train_extra("quantize")
    from .export.quantize import quantize_model
    from .model_store import resolve_model

    card = quantize_model(resolve_model(args.model_dir), args.out, name=args.name, description=args.description)
    m = card.test_metrics
    print(
        f"quantized -> {args.out}: max |int8 - float32| {card.parity['max_abs_diff']:.3g} "
        f"(mean {card.parity['mean_abs_diff']:.3g}); test -ELBO {m['neg_elbo']:.2f} nats per image"
    )
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    require_train_extra("parity")
    from .export.parity import check_model_folder

    report = check_model_folder(args.model_dir)
    print(report.summary())
    return 0
