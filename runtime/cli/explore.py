"""The `vae-gen` commands that explore a model: interpolate, manifold, walk (its latent space) and reconstruct.

Each is a thin layer over the public API; with a learned prior the latent
tools move in its noise space (`Generator.noise`, `Generator.to_latents`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..output.images import check_grid_size, check_picture_path, save_animation, save_grid
from ..sampling.generator import Generator
from ..sampling.latent_paths import MAX_FRAMES, MAX_MANIFOLD_SIZE, METHODS, interpolate, manifold, random_walk
from ..sampling.reconstruct import MAX_VARIATIONS, reconstruct_rows
from ..sampling.user_inputs import INVERT_CHOICES, load_image, load_latent
from .args import MAX_FPS, MIN_FPS, frames_per_second, int_from_to, non_negative_int, positive_float, seed_number
from .options import add_class_option, add_picture_options, generator_for, label_of


def add_explore_commands(commands: Any, model_help: str) -> None:
    """The subcommands, each added by its own function below."""
    _add_interpolate(commands, model_help)
    _add_manifold(commands, model_help)
    _add_walk(commands, model_help)
    _add_reconstruct(commands, model_help)


def _add_interpolate(commands: Any, model_help: str) -> None:
    interpolate = commands.add_parser("interpolate", help="decode a path between two latents (strip PNG or GIF)")
    interpolate.add_argument(
        "--from-seed", type=seed_number, default=0, help="start at image 0 of this seed (default 0)"
    )
    interpolate.add_argument("--to-seed", type=seed_number, default=1, help="end at image 0 of this seed (default 1)")
    interpolate.add_argument(
        "--from", dest="from_file", type=Path, help="start at this latent (.npy; noise, with a prior), instead of a seed"
    )
    interpolate.add_argument("--to", dest="to_file", type=Path,
                             help="end at this latent (.npy; noise, with a prior), instead of a seed")
    interpolate.add_argument(
        "--steps", type=int_from_to(2, MAX_FRAMES), default=10,
        help=f"images on the path, ends included (default 10, at most {MAX_FRAMES:,})"
    )
    interpolate.add_argument("--method", choices=METHODS, default="spherical", help="path shape (default spherical)")
    add_class_option(interpolate)
    interpolate.add_argument("--from-class", metavar="NAME|INDEX", help="a conditional model: morph the label from this "
                             "class (with --to-class), the latent fixed at --from-seed's")  # fmt: skip
    interpolate.add_argument("--to-class", metavar="NAME|INDEX", help="a conditional model: ... to this class")
    interpolate.add_argument("--fps", type=frames_per_second, default=8.0,
                             help=f"GIF frames per second (default 8; {MIN_FPS:g} to {MAX_FPS:g})")
    add_picture_options(interpolate, "a .png strip or a .gif animation", model_help)
    interpolate.set_defaults(run=_cmd_interpolate)


def _add_manifold(commands: Any, model_help: str) -> None:
    manifold_cmd = commands.add_parser("manifold", help="decode a grid over two latent dimensions (others at 0)")
    manifold_cmd.add_argument("--size", type=int_from_to(2, MAX_MANIFOLD_SIZE), default=15,
                              help=f"images per side (default 15, at most {MAX_MANIFOLD_SIZE})")
    manifold_cmd.add_argument(
        "--extent", type=positive_float, default=2.0, help="grid spans [-extent, extent] (default 2)"
    )
    manifold_cmd.add_argument(
        "--dims",
        type=non_negative_int,
        nargs=2,
        default=[0, 1],
        metavar=("X", "Y"),
        help="the two latent dimensions to vary (default 0 1)",
    )
    add_class_option(manifold_cmd)
    add_picture_options(manifold_cmd, "the grid PNG", model_help)
    manifold_cmd.set_defaults(run=_cmd_manifold)


def _add_walk(commands: Any, model_help: str) -> None:
    walk = commands.add_parser("walk", help="an animated GIF of a smooth seeded random walk in the latent space")
    walk.add_argument("--seed", type=seed_number, default=0, help="random seed of the waypoints (default 0)")
    walk.add_argument("--legs", type=int_from_to(2, MAX_FRAMES // 2), default=6, help="waypoints on the loop (default 6)")
    walk.add_argument(
        "--frames-per-leg", type=int_from_to(2, MAX_FRAMES // 2), default=15,
        help=f"frames between waypoints (default 15; legs x frames at most {MAX_FRAMES:,})"
    )
    walk.add_argument("--fps", type=frames_per_second, default=15.0,
                      help=f"frames per second (default 15; {MIN_FPS:g} to {MAX_FPS:g})")
    add_class_option(walk)
    add_picture_options(walk, "the .gif file", model_help)
    walk.set_defaults(run=_cmd_walk)


def _add_reconstruct(commands: Any, model_help: str) -> None:
    reconstruct = commands.add_parser("reconstruct", help="encode your images and decode them again")
    reconstruct.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files, any size or mode")
    reconstruct.add_argument(
        "--variations",
        type=int_from_to(0, MAX_VARIATIONS),
        default=0,
        help=f"also decode K samples of each image's posterior (default 0, at most {MAX_VARIATIONS})",
    )
    reconstruct.add_argument("--seed", type=seed_number, default=0, help="random seed of the variations (default 0)")
    add_class_option(reconstruct, "a conditional model: the class the images show (given to the encoder and decoder)",
                     guidance=False)  # fmt: skip
    reconstruct.add_argument(
        "--invert",
        choices=INVERT_CHOICES,
        default="auto",
        help="make dark-on-light pictures light-on-dark like Fashion-MNIST (default auto)",
    )
    add_picture_options(reconstruct, "a PNG grid: one row per image: input, reconstruction, variations", model_help,
                        prior=False)  # fmt: skip
    reconstruct.set_defaults(run=_cmd_reconstruct)


def _cmd_interpolate(args: argparse.Namespace) -> int:
    suffixes = (".png", ".gif")
    check_picture_path(args.out, suffixes, "interpolate")
    generator = generator_for(args)
    check_grid_size(args.steps, generator.card.image_shape, args.scale, "--scale")
    morph = args.from_class is not None or args.to_class is not None
    if morph:
        if args.from_class is None or args.to_class is None or args.label is not None:
            raise InvalidArgumentError("morphing the class takes both --from-class and --to-class (and no --class)")
        if args.to_file is not None:
            raise InvalidArgumentError("--from-class/--to-class keep the latent fixed; --to does not apply")
        start = load_latent(args.from_file, generator.latent_dim) if args.from_file else generator.latents(1, args.from_seed)[0]
        # (the class morphs with the latent fixed: with a prior, the latent its noise maps to)
        ends = [generator.labels(label_of(generator, text), 1) for text in (args.from_class, args.to_class)]
        if any(labels is not None and labels.cycles for labels in ends):
            raise InvalidArgumentError("--from-class and --to-class each name one class (or a blend), not all")
        a, b = (labels.rows(0, 1)[0] for labels in ends if labels is not None)
        t = np.linspace(0.0, 1.0, args.steps)[:, None]
        fixed = np.repeat(start[None], args.steps, axis=0)
        frames = generator.decode_uint8(fixed, label=(1 - t) * a + t * b, guidance=args.guidance)
    else:
        # In the noise space: with a prior, the path between two seeds' noise is mapped through it to latents.
        a, b = (load_latent(file, generator.noise_dim) if file else generator.noise(1, seed)[0]
                for file, seed in ((args.from_file, args.from_seed), (args.to_file, args.to_seed)))  # fmt: skip
        path = generator.to_latents(interpolate(a, b, args.steps, args.method))
        frames = generator.decode_uint8(path, label=label_of(generator, args.label), guidance=args.guidance)
    if args.out.suffix.lower() == ".gif":
        save_animation(frames, args.out, fps=args.fps, scale=args.scale)
    else:
        save_grid(frames, args.out, scale=args.scale, columns=len(frames))
    return 0


def _cmd_manifold(args: argparse.Namespace) -> int:
    check_picture_path(args.out)
    generator = generator_for(args)
    check_grid_size(args.size * args.size, generator.card.image_shape, args.scale, "--scale")
    z = generator.to_latents(manifold(generator.noise_dim, args.size, args.extent, tuple(args.dims)))
    images = generator.decode_uint8(z, label=label_of(generator, args.label), guidance=args.guidance)
    save_grid(images, args.out, scale=args.scale, columns=args.size)
    return 0


def _cmd_walk(args: argparse.Namespace) -> int:
    check_picture_path(args.out, (".gif",), "walk")
    if args.legs * args.frames_per_leg > MAX_FRAMES:
        raise InvalidArgumentError(f"--legs {args.legs} x --frames-per-leg {args.frames_per_leg} makes "
                                   f"{args.legs * args.frames_per_leg:,} frames; at most {MAX_FRAMES:,}")  # fmt: skip
    generator = generator_for(args)
    check_grid_size(args.legs * args.frames_per_leg, generator.card.image_shape, args.scale, "--scale")
    z = generator.to_latents(random_walk(generator.noise_dim, args.seed, args.legs, args.frames_per_leg))
    frames = generator.decode_uint8(z, label=label_of(generator, args.label), guidance=args.guidance)
    save_animation(frames, args.out, fps=args.fps, scale=args.scale)
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    check_picture_path(args.out)
    generator = Generator(args.model)
    if not generator.has_encoder:
        raise InvalidArgumentError(f"model {generator.name!r} has no encoder (exported from a decoder alone); "
                                   "reconstruct needs one")  # fmt: skip
    check_grid_size(len(args.images) * (2 + args.variations), generator.card.image_shape, args.scale, "--scale")
    pictures = [load_image(path, generator.image_shape, generator.value_range, args.invert) for path in args.images]
    rows = reconstruct_rows(generator, np.stack(pictures), args.variations, args.seed, label=label_of(generator, args.label))
    save_grid(rows.reshape(-1, *generator.uint8_shape), args.out, scale=args.scale, columns=rows.shape[1])
    return 0
