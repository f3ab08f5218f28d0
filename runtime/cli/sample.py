"""The `vae-gen sample` command: its options, and a run written with a progress bar and a clean stop on Ctrl-C.

`add_sample_command` declares every option of a run (count, seed, class,
output, grid, shard or start, batch size, threads, workers, overwrite or
resume); `_cmd_sample` hands them to `generate_run` (vae_gen.bulk), with a
tqdm bar on an interactive terminal and a cancel event that Ctrl-C and
SIGTERM set, so that the run stops between two safe points and can be resumed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from ..bulk import PARALLEL_PNG_MIN_IMAGES, generate_run
from ..output.images import MAX_GRID_IMAGES, MAX_GRID_SCALE
from ..output.run_layout import LAYOUTS
from ..sampling.generator import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_THREADS
from .args import int_from_to, non_negative_int, positive_float, positive_int, seed_number
from .options import CLASS_HELP, add_class_option, add_prior_option, generator_for, label_of


def add_sample_command(commands: Any, model_help: str) -> None:
    """`vae-gen sample`: every option of a run, checked as argparse reads it."""
    sample = commands.add_parser("sample", help="generate images from random latents")
    sample.add_argument("-n", "--count", type=positive_int, default=16,
                        help="images in the run, indices 0 to N-1 (default 16)")
    sample.add_argument("--seed", type=seed_number, default=0, help="random seed, 0 to 2**64-1 (default 0)")
    sample.add_argument("--temperature", type=positive_float, default=1.0, help="scale of the N(0, I) noise (default 1)")
    add_class_option(sample, CLASS_HELP + "; with --grid, all lays out one row per class", "NAME|INDEX|all|BLEND")
    sample.add_argument("--layout", choices=LAYOUTS, default="flat",
                        help="PNG folders: flat (NNNNNN.png, default) or by-class (CLASS/NNNNNN.png, a labelled dataset)")
    sample.add_argument("--model", help=model_help)
    add_prior_option(sample)
    sample.add_argument("--out", type=Path, help="a folder for PNG files, or a .npy / .npz file (a conditional model's "
                        ".npz also holds labels and classes; a .npy only the images)")
    sample.add_argument("--grid", type=Path, help=f"also write the images as one contact-sheet PNG (at most {MAX_GRID_IMAGES})")
    sample.add_argument("--scale", type=int_from_to(1, MAX_GRID_SCALE), default=1,
                        help=f"nearest-neighbour upscaling of the grid (default 1, at most {MAX_GRID_SCALE})")
    part = sample.add_mutually_exclusive_group()
    part.add_argument("--start", type=non_negative_int, default=0, help="write only images START to N-1 of the run")
    part.add_argument("--shard", metavar="K/N", help="write only shard K of N (0 <= K < N), whole batches of the run")
    sample.add_argument("--batch-size", type=int_from_to(1, MAX_BATCH_SIZE), default=DEFAULT_BATCH_SIZE,
                        help=f"images per decoder call (default {DEFAULT_BATCH_SIZE}, as the Python API's; at most "
                             f"{MAX_BATCH_SIZE:,}, about 1.8 GB with the default model); it sets "
                             "how images are batched, so keep it the same across shards and resumes of a run")
    sample.add_argument("--threads", type=int_from_to(1, MAX_THREADS),
                        help="onnxruntime threads (default: one per CPU the process may use, as taskset or a cpuset allow)")
    sample.add_argument(
        "--workers",
        type=non_negative_int,
        help=f"processes encoding PNGs (default: one per core for {PARALLEL_PNG_MIN_IMAGES:,} images or more, "
        "else 0: in-process)",
    )
    again = sample.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="replace images already in the output")
    again.add_argument("--resume", action="store_true", help="finish an interrupted run into the same folder")
    sample.add_argument("--strict-engine", action="store_true",
                        help="refuse to resume or add to a PNG run that another engine (CPU features, onnxruntime, "
                             "numpy) started, instead of warning: only then are all its images byte-identical")
    sample.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(run=_cmd_sample)


@contextmanager
def _cancel_on_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C and SIGTERM set, for a run to stop at its next safe point.

    Raising from a signal handler could land between creating a temporary
    file and the code that removes it; setting a flag cannot. A second
    signal interrupts at once, for a user who will not wait.
    """
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _cmd_sample(args: argparse.Namespace) -> int:
    generator = generator_for(args, threads=args.threads)
    with _progress_bar(args.count, enabled=not args.quiet) as progress, _cancel_on_signals() as cancel:
        generate_run(
            generator, args.out, args.count, seed=args.seed, temperature=args.temperature, label=label_of(generator, args.label),
            guidance=args.guidance, start=args.start, shard=args.shard, batch_size=args.batch_size, layout=args.layout,
            workers=args.workers,
            mode="overwrite" if args.overwrite else "resume" if args.resume else "new",
            grid=args.grid, grid_scale=args.scale, progress=progress, cancel=cancel, strict_engine=args.strict_engine,
        )  # fmt: skip
    return 0


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on an interactive terminal only; elsewhere no callback at all."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True) as bar:

        def update(done: int, total: int) -> None:
            bar.total = total  # a shard or a tail covers fewer than the run's count
            bar.update(done - bar.n)

        yield update
