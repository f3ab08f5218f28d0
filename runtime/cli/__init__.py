"""The `vae-gen` command: argparse parsers and one module per group of subcommands."""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]
