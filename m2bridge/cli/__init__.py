"""The ``m2bridge`` command: argument parsing and output only; each subcommand is a module.

Exit codes: 0 ok, 1 command error, 2 usage, 3 supervisor unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from m2bridge import __version__

#: subcommands, each a module under ``m2bridge.cli`` exposing ``add_parser(subparsers)``.
SUBCOMMANDS = ("init", "serve", "config", "up", "ctl", "top", "web", "bench", "relay")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m2bridge",
        description="Serve WSGI apps behind Mongrel2 and run the whole stack under one supervisor.",
    )
    parser.add_argument("--version", action="version", version=f"m2bridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"m2bridge.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"m2bridge.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.run(args)
    return result
