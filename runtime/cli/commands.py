"""The `vae-gen` command: a thin argparse layer over the public API, and how its failures are told.

`build_parser` gathers the subcommands, each group declared in its own
module (sample, model_info, explore, training_parsers, serving); `main` runs
the chosen one and turns every failure into its exit status. User errors
print one line to stderr and exit 2, like argparse's own usage errors, in
the CLI's terms (`in_cli_terms`); exit 1 means a check ran and failed
(selftest). A traceback means a bug. The commands that need the `train`
extra import it only when they run (cli.training), so the generation
commands never load TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from .. import __version__
from ..core.checks import shown
from ..core.exit_codes import CLOSED_PIPE, INTERRUPTED, USER_ERROR
from ..core.memory import exit_out_of_memory, is_out_of_memory, out_of_memory
from ..errors import Cancelled, VaeGenError
from ..model.store import DEFAULT_MODEL
from .explore import add_explore_commands
from .model_info import add_model_commands
from .sample import add_sample_command
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

    add_sample_command(commands, model_help)
    add_model_commands(commands, model_help)
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
