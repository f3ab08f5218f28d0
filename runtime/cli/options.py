"""Options that several `vae-gen` commands share: --class and --guidance (a conditional model's label), --prior,
and the --out/--scale/--model tail of the commands that write one picture."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..output.images import MAX_GRID_SCALE
from ..sampling.generator import Generator
from ..sampling.guidance import MAX_GUIDANCE
from ..sampling.labels import parse_label_text
from .args import guidance_value, int_from_to

#: What --class takes, for a class-conditional model (`vae-gen info` lists its classes).
CLASS_HELP = ("a conditional model's class: a name or index, all (image i of class i mod K, balanced), or a blend "
              'such as "Shirt:0.5,Dress:0.5"')  # fmt: skip
#: The same for the commands whose images share one class (all would give each frame another).
ONE_CLASS_HELP = 'a conditional model\'s class: a name or index, or a blend such as "Shirt:0.5,Dress:0.5"'


def add_class_option(
    parser: argparse.ArgumentParser, help: str = ONE_CLASS_HELP, metavar: str = "NAME|INDEX|BLEND", guidance: bool = True
) -> None:
    """--class (into args.label), on the commands that decode, and beside it --guidance (into args.guidance)
    where the images are drawn (not reconstructed)."""
    parser.add_argument("--class", dest="label", metavar=metavar, help=help)
    if not guidance:
        return
    parser.add_argument("--guidance", type=guidance_value, default=0.0, metavar="W",
                        help=f"a conditional model's class guidance, 0 to {MAX_GUIDANCE:g}: each image pushed by W "
                             "times its difference from the all-class average decode, toward its class (sharper "
                             "class details, two decoder calls per image; default 0, the model's own output)")  # fmt: skip


def add_prior_option(parser: argparse.ArgumentParser) -> None:
    """--prior model|none, on the commands that generate."""
    parser.add_argument("--prior", choices=("model", "none"), default="model",
                        help="model (default): a model with a learned prior maps N(0, I) noise through it, and the "
                             "latent tools move in its noise space; none: latents from N(0, I) directly, as for "
                             "models without one")  # fmt: skip


def add_picture_options(parser: argparse.ArgumentParser, out_help: str, model_help: str, prior: bool = True) -> None:
    """--out (required), --scale, --model and, on the commands that draw from noise, --prior: the tail that every
    command writing one picture shares."""
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--scale", type=int_from_to(1, MAX_GRID_SCALE), default=1,
                        help=f"nearest-neighbour upscaling (default 1, at most {MAX_GRID_SCALE})")
    parser.add_argument("--model", help=model_help)
    if prior:
        add_prior_option(parser)


def generator_for(args: argparse.Namespace, **options: Any) -> Generator:
    """The Generator of --model, drawing through its prior unless --prior none."""
    return Generator(args.model, use_prior=getattr(args, "prior", "model") == "model", **options)


def label_of(generator: Generator, text: str | None) -> str | int | dict[str | int, float] | None:
    """--class's text as a label spec of this model (None when not given: an unconditional model's case)."""
    return None if text is None else parse_label_text(text, generator.classes)
