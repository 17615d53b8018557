"""``m2bridge relay``: run the relay between Mongrel2 and workers started with ``--relay``.

    m2bridge relay --send-spec tcp://127.0.0.1:9997 --bind ipc:///tmp/m2bridge-relay.ipc
    m2bridge serve handlers.hello:app --relay ipc:///tmp/m2bridge-relay.ipc \\
        --recv-spec tcp://127.0.0.1:9996

The relay holds Mongrel2's requests until a worker asks for them, so stopping a worker
(``decr``, rolling ``reload``) loses none (docs/relay.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from m2bridge.cli.serve import endpoint
from m2bridge.errors import ConfigError
from m2bridge.logs import LOG_LEVELS, setup_logging


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Create the ``relay`` parser."""
    parser = subparsers.add_parser(
        "relay",
        help="relay Mongrel2's requests to workers that ask for them (no loss on stop)",
        description="Read requests from Mongrel2's send_spec(s) and hand them to workers "
        "(m2bridge serve --relay) by credit, so a draining worker loses none.",
    )
    parser.add_argument(
        "--send-spec",
        dest="send_specs",
        action="append",
        required=True,
        type=endpoint,
        metavar="SPEC",
        help="Mongrel2's send_spec, repeatable (workers give their --recv-spec in this order)",
    )
    parser.add_argument(
        "--bind", required=True, type=endpoint, metavar="ENDPOINT", help="where workers connect"
    )
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, type=str.lower)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``m2bridge relay``."""
    try:
        setup_logging(args.log_level)
    except ConfigError as exc:
        print(f"m2bridge relay: error: {exc}", file=sys.stderr)
        return 1
    from m2bridge import relay

    try:
        return relay.main(args.send_specs, args.bind)
    except KeyboardInterrupt:
        return 1
