"""``m2bridge config load|check|show``: Mongrel2 config files and databases, without m2sh.

The commands live in ``mongrel2_conf.cli`` (usable alone as ``python -m mongrel2_conf``); this
module only mounts them under ``m2bridge``.
"""

from __future__ import annotations

import argparse
from typing import Any

from mongrel2_conf import cli as conf_cli


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Create the ``config`` parser with its ``load``, ``check`` and ``show`` subcommands."""
    parser = subparsers.add_parser(
        "config",
        help="load, check or show a Mongrel2 config (m2sh's language, or its sqlite database)",
        description="Load an m2sh config file into Mongrel2's sqlite database (like 'm2sh load', "
        "but nothing is written when it is invalid; --lenient ignores what m2sh ignores, with a "
        "warning each), check one, or show a database. See docs/config.md.",
    )
    conf_cli.add_commands(parser)
    parser.set_defaults(run=conf_cli.run)
