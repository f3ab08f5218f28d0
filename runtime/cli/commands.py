"""The `vae-gen` command: a thin argparse layer over the public API.

User errors print one line to stderr and exit 2, like argparse's own usage
errors; exit 1 means a check ran and failed (selftest). A traceback means a bug.
The commands that need the `train` extra live in cli_training and import it
only when they run, so the generation commands never load TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeGuard

from .. import __version__
from ..bulk import PARALLEL_PNG_MIN_IMAGES, generate_run
from ..core.checks import shown
from ..core.exit_codes import CLOSED_PIPE, INTERRUPTED, USER_ERROR
from ..core.memory import exit_out_of_memory, is_out_of_memory, out_of_memory
from ..errors import Cancelled, VaeGenError
from ..model.card import ModelCard, load_verified
from ..model.card_parts import OnnxFile
from ..model.store import DEFAULT_MODEL, list_models, resolve_model
from ..output.images import MAX_GRID_IMAGES, MAX_GRID_SCALE
from ..output.run_layout import LAYOUTS
from ..sampling.generator import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_THREADS, Generator
from .args import (
    int_from_to,
    non_negative_int,
    positive_float,
    positive_int,
    seed_number,
)
from .explore import add_explore_commands
from .options import CLASS_HELP, add_class_option, add_prior_option, generator_for, label_of
from .serving import add_serve_command
from .training_parsers import add_training_commands

log = logging.getLogger("vae_gen")



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae-gen",
        description="Generate Fashion-MNIST-like images with a VAE decoder on CPU (onnxruntime).",
    )
    parser.add_argument("--version", action="version", version=f"vae-gen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    model_help = f"a shipped model name or a model folder path (default: {DEFAULT_MODEL})"

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

    info = commands.add_parser("info", help="print a model's card")
    info.add_argument("--model", help=model_help)
    info.add_argument("--json", action="store_true", help="print the whole model.json")
    info.set_defaults(run=_cmd_info)

    models = commands.add_parser("models", help="list the shipped models")
    models.set_defaults(run=_cmd_models)

    selftest = commands.add_parser("selftest", help="check the model against the golden outputs in its model.json")
    selftest.add_argument("--model", help=model_help)
    selftest.set_defaults(run=_cmd_selftest)

    add_explore_commands(commands, model_help)
    add_training_commands(commands, model_help)
    add_serve_command(commands, model_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_keep_negative_values(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        with _sigterm_interrupts():
            status: int = args.run(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return status
    except VaeGenError as exc:
        if isinstance(exc, Cancelled):
            print(f"vae-gen {args.command}: interrupted; {exc} (finish a PNG run with --resume)", file=sys.stderr)
            return INTERRUPTED
        if isinstance(exc, MemoryError):
            exit_out_of_memory(f"vae-gen {args.command}: error: {exc}")
        print(f"vae-gen {args.command}: error: {in_cli_terms(str(exc))}", file=sys.stderr)
        return USER_ERROR
    except MemoryError as exc:  # numpy's or Python's own allocations; onnxruntime's arrive as OutOfMemoryError
        exit_out_of_memory(f"vae-gen {args.command}: error: {out_of_memory('running', exc)}")
    except ImportError as exc:  # a module imported on first use whose library the loader could not map
        if not is_out_of_memory(exc):
            raise
        exit_out_of_memory(f"vae-gen {args.command}: error: {out_of_memory('loading a library', exc)}")
    except KeyboardInterrupt as exc:  # a command that keeps something says what in the exception's text
        print(f"vae-gen {args.command}: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader (`head`, say) has gone: stop quietly, as other tools do. Point stdout at /dev/null so
        # the interpreter's final flush does not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE
    except OSError as exc:  # the user's paths and disks: a full disk, a name too long, a folder that went away
        print(f"vae-gen {args.command}: error: {os_error_text(exc)}", file=sys.stderr)
        return USER_ERROR


def os_error_text(exc: OSError) -> str:
    """An OSError in one line: the path it concerns and what the system said (`out.png: No space left on device`)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{shown(str(exc.filename))[1:-1]}: {reason}" if exc.filename is not None else reason




#: Options whose value may start with "-" (a range such as -1,1), which argparse would take for an option.
NEGATIVE_VALUE_OPTIONS = ("--value-range",)


def _keep_negative_values(argv: list[str]) -> list[str]:
    """`--value-range -1,1` -> `--value-range=-1,1`, the spelling argparse reads as option and value."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in NEGATIVE_VALUE_OPTIONS and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


#: The API's spellings of arguments (`name=`, as errors of the library write them) -> the CLI's options.
CLI_TERMS = {
    'mode="overwrite"': "--overwrite",
    'mode="resume"': "--resume",
    "out=": "--out ",
    "grid=": "--grid ",
    "start=": "--start ",
    "shard=": "--shard ",
    "count=": "-n ",
    "label=": "--class ",
    "guidance=": "--guidance ",
    'layout="by-class"': "--layout by-class",
    "strict_engine=True": "--strict-engine",
    "grid_scale=": "--scale",
    "workers=": "--workers",
}


def in_cli_terms(message: str) -> str:
    """An error of the library, in the CLI's terms: `start=10 must be below count=10` -> `--start 10 must be
    below -n 10`."""
    # Only where a word starts (after a space or an opening bracket), so that paths like /data/count=3/ stay.
    pattern = "|".join(re.escape(api) for api in CLI_TERMS)
    return re.sub(rf"(?:^|(?<=[\s(]))({pattern})(?=(.?))", _cli_spelling, message)


def _cli_spelling(match: re.Match[str]) -> str:
    option = CLI_TERMS[match.group(1)]
    # "--out " is followed by its value; before punctuation or the end there is none.
    return option.rstrip() if match.group(2) in ("", " ", ",", ";", ":", ")") else option


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM interrupts a command as Ctrl-C does (one line, exit 130), instead of killing it silently with 143.

    `sample` turns both into a cancel event of its own; `serve`'s uvicorn handles them while it runs and raises
    the signal again once it has shut down, which then lands here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def _cmd_info(args: argparse.Namespace) -> int:
    folder = resolve_model(args.model)
    card = load_verified(folder)  # a damaged folder is an error, not a card to show
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
        return 0
    metrics = ", ".join(f"{_printable(k)} {v:.2f}" for k, v in card.test_metrics.items() if isinstance(v, float))
    settings = ", ".join(f"{_printable(k)}={_printable(v)}" for k, v in card.training.items() if isinstance(v, (int, float, str)))
    lines = [
        f"name:          {_printable(card.name)}",
        f"description:   {_printable(card.description, INFO_TEXT_CHARACTERS)}",
        f"folder:        {folder}",
        f"format:        {card.format_version}",
        f"architecture:  {card.architecture}, latent_dim {card.latent_dim}",
        f"images:        {'x'.join(map(str, card.image_shape))}, values {card.value_range[0]:g}..{card.value_range[1]:g}",
        f"decoder:       {_graph_line(card.decoder)}",
        f"encoder:       {_graph_line(card.encoder)}",
        f"classes:       {_classes_line(card.classes)}",
        f"prior:         {_prior_line(card)}",
        f"opset:         {card.opset}, decoder {card.decoder_flops / 1e6:.2f} MFLOP per image",
        f"test metrics:  {f'{metrics} (nats per image)' if metrics else 'none measured'}",
        f"samples:       {_samples_line(card.extra.get('sample_quality'))}",
        _parity_line(card.parity),
        f"origin:        {_origin_line(card.origin)}",
    ]
    if settings:
        lines.append(f"trained with:  {settings}")
    lines.append(f"exported with: {', '.join(f'{k} {v}' for k, v in card.versions.items())}")
    print("\n".join(lines))
    return 0


def _prior_line(card: ModelCard) -> str:
    if card.prior is None:
        return "N(0, I) (no prior graph)"
    prior = card.prior
    return (f"{prior.kind}, {prior.graph.file} (noise {prior.noise_dim} -> z {card.latent_dim}); "
            "--prior none draws z from N(0, I)")  # fmt: skip


def _classes_line(classes: tuple[str, ...]) -> str:
    if not classes:
        return "none (unconditional: --class does not apply)"
    return f"{len(classes)}, for --class: " + ", ".join(f"{i} {name}" for i, name in enumerate(classes))


def _graph_line(entry: OnnxFile | None) -> str:
    if entry is None:
        return "none (a decoder-only model: it cannot encode)"
    return f"{entry.file} ({', '.join(entry.inputs)} -> {', '.join(entry.outputs)})"


#: How an imported model's graphs were made from the shapes its Keras files have (origin's keys and values, as
#: vae_gen.export writes them), in words; other values are not shown.
ORIGIN_SHAPES = {
    ("decoder_output", "logits"): "the decoder outputs logits (the graph applies the sigmoid)",
    ("encoder_outputs", "fused"): "one fused encoder output (z_mean first)",
    ("encoder_outputs", "fused-log-var-first"): "one fused encoder output (z_log_var first)",
    ("decoder_label", "concatenated"): "the decoder takes concat(z, label)",
    ("encoder_label", "tiled"): "the encoder takes the label tiled over the image",
    ("trust_code", True): "Lambda code trusted at export (vae-gen parity needs --trust-code)",
}


def _origin_line(origin: dict[str, Any]) -> str:
    if origin.get("kind") == "keras":
        files = ", ".join(str(origin[role]) for role in ("decoder", "encoder") if origin.get(role))
        # Exact values only (the same type too: JSON's 1 is not true), from a card that may be hand-edited.
        shapes = [words for (key, value), words in ORIGIN_SHAPES.items()
                  if type(origin.get(key)) is type(value) and origin.get(key) == value]  # fmt: skip
        return f"imported from Keras files ({files})" + "".join(f"; {words}" for words in shapes)
    return "trained by vae-gen train"


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a value read from a model.json is a number (JSON's true and false are not), before it is formatted."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parity_line(parity: dict[str, Any]) -> str:
    """The card's parity record, each value shown only if it is what it should be (a hand-edited card may say
    anything): a number, or a short text; else "?"."""

    def number(key: str, spec: str = ".3g") -> str:
        value = parity.get(key)
        return format(value, spec) if _is_number(value) else "?"

    def text(key: str) -> str:
        value = parity.get(key)
        return shown(value)[1:-1] if isinstance(value, str) else "?"

    if "reference" in parity:  # a quantized copy: compared with the float32 graphs it came from
        line = f"parity:        max |onnx - {text('reference')}| {number('max_abs_diff')} (mean {number('mean_abs_diff')})"
        if "encoder_reference" in parity:
            line += (f"; max |onnx - {text('encoder_reference')}| {number('encoder_max_abs_diff')} "
                     f"(mean {number('encoder_mean_abs_diff')})")  # fmt: skip
        return line
    return f"parity:        max |keras - onnx| {number('max_abs_diff')} (tolerance {number('tolerance', 'g')})"


#: A model.json's free text longer than this is cut in `info` (the card itself is unchanged).
INFO_TEXT_CHARACTERS = 300


def _printable(value: object, limit: int = 120) -> str:
    """A card's text for the terminal: control characters (escape sequences, newlines) shown escaped, as repr
    writes them, so a hostile model.json cannot rewrite the screen or forge lines; cut to `limit` characters."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


#: The sample-quality figures `info` shows, by their key in model.json's extra.sample_quality.
SAMPLE_FIGURES = (("fd", "FD", ".2f"), ("precision", "precision", ".3f"), ("recall", "recall", ".3f"),
                  ("class_entropy", "class entropy", ".3f"), ("class_accuracy", "class accuracy", ".3f"))  # fmt: skip


def _samples_line(record: object) -> str:
    """The card's sample-quality record in one line, or "not measured"; a hand-edited value shows as "?"."""
    if not isinstance(record, dict):
        return "not measured"

    def figure(key: str, form: str) -> str:
        value = record.get(key)
        return format(value, form) if _is_number(value) and math.isfinite(value) else "?"

    shown_figures = [f"{label} {figure(key, form)}" for key, label, form in SAMPLE_FIGURES if key in record]
    images = record.get("images")
    about = f" ({images:,} images at T = 1 against the test set)" if isinstance(images, int) else ""
    return ", ".join(shown_figures) + about if shown_figures else "not measured"


def _cmd_models(args: argparse.Namespace) -> int:
    damaged = 0
    for name in list_models():
        try:
            card = load_verified(resolve_model(name))
        except VaeGenError as exc:
            print(f"vae-gen models: error: {exc}", file=sys.stderr)
            damaged += 1
            continue
        default = " (default)" if name == DEFAULT_MODEL else ""
        elbo = card.test_metrics.get("neg_elbo")
        elbo_text = f"test -ELBO {elbo:.1f}" if _is_number(elbo) else ""
        classes = f"{len(card.classes)} classes" if card.classes else "unconditional"
        samples = card.extra.get("sample_quality")
        fd = samples.get("fd") if isinstance(samples, dict) else None
        if _is_number(fd) and math.isfinite(fd):
            elbo_text += f", sample FD {fd:.1f}"
        print(f"{name}{default}\t{card.architecture}, latent {card.latent_dim}, {classes}\t{elbo_text}")
    return USER_ERROR if damaged else 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    generator = Generator(args.model)
    result = generator.selftest()
    verdict = "pass" if result.passed else "FAIL"
    print(
        f"{generator.name}: {verdict}: {result.checks} golden latents, "
        f"max abs difference {result.max_abs_diff:.3g} (tolerance {result.tolerance:g})"
    )
    return 0 if result.passed else 1
