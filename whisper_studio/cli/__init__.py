"""`python -m whisper_studio SUBCOMMAND ...`: one module per subcommand under whisper_studio/cli/.

The engine modules hold no argparse code; each `cli/<name>.py` turns flags into the engine's typed calls."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from whisper_studio.errors import StudioError

# Module name -> it defines `register_cli(subparsers)`; each subcommand's `func(args) -> int` runs it.
# Modules are imported only to build the parser, so `--help` stays fast enough and a broken optional
# dependency in one subcommand does not take the others down.
SUBCOMMAND_MODULES = (
    "whisper_studio.cli.transcribe",
    "whisper_studio.cli.data",
    "whisper_studio.cli.demo",
    "whisper_studio.cli.train",
    "whisper_studio.cli.evaluate",
    "whisper_studio.cli.export",
    "whisper_studio.cli.push",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m whisper_studio",
        description="Whisper Studio: fine-tune Whisper on a Common Voice language with LoRA on an 8-bit base, "
        "then compare base and adapted transcripts.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
