"""``m2bridge relay``: run the relay between Mongrel2 and workers started with ``--relay``.

    m2bridge relay --send-spec tcp://127.0.0.1:9997 --bind ipc:///tmp/m2bridge-relay.ipc
    m2bridge serve m2bridge.handlers.hello:app --relay ipc:///tmp/m2bridge-relay.ipc \\
        --recv-spec tcp://127.0.0.1:9996

The relay holds Mongrel2's requests until a worker asks for them, so stopping a worker
(``decr``, rolling ``reload``) loses none (docs/relay.md). Given Mongrel2's recv_specs too
(``--recv-spec``, or read with ``--config``/``--handler``), it closes the connections a worker
held when that worker is killed (a crash, or hung and replaced), so their clients are not left
waiting. With ``--resend``, the requests such a worker had not started go to another worker
instead, and only the connections of which it started a request are closed (docs/relay.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from m2bridge.cli.serve import UsageError, _handler_and_server
from m2bridge.config import endpoint
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
        type=endpoint,
        metavar="SPEC",
        help="Mongrel2's send_spec, repeatable (workers give their --recv-spec in this order)",
    )
    parser.add_argument(
        "--recv-spec",
        dest="recv_specs",
        action="append",
        type=endpoint,
        metavar="SPEC",
        help="Mongrel2's recv_spec, one per --send-spec in the same order (optional): the relay "
        "then closes the connections of a worker that was killed",
    )
    parser.add_argument(
        "--config", metavar="PATH", help="read the send_specs and recv_specs from this config"
    )
    parser.add_argument(
        "--handler",
        action="append",
        metavar="NAME[@SERVER]",
        help="a handler in --config (route, send_ident or name), repeatable, in worker order",
    )
    parser.add_argument(
        "--bind", required=True, type=endpoint, metavar="ENDPOINT", help="where workers connect"
    )
    parser.add_argument(
        "--resend",
        action="store_true",
        help="send the requests a lost worker had not started to another worker (workers then "
        "wait for the relay's go before they run what they read: one round trip per batch)",
    )
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, type=str.lower)
    parser.set_defaults(run=run, parser=parser)


def handler_specs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``(send_specs, recv_specs)``: ``--send-spec`` (and ``--recv-spec``) or ``--config`` +
    ``--handler`` (not both); recv_specs may be empty.

    Raises:
        UsageError: none or both given, ``--config`` without ``--handler``, or recv_specs not
            one per send_spec.
        ConfigError: the config cannot be read or has no such handler.
    """
    if bool(args.config) != bool(args.handler):
        raise UsageError("--config and --handler go together")
    if bool(args.send_specs) == bool(args.config):
        raise UsageError("give either --send-spec or --config/--handler")
    if args.config and args.recv_specs:
        raise UsageError("--recv-spec comes from --config/--handler: give one or the other")
    if args.send_specs:
        recv = list(args.recv_specs or ())
        if recv and len(recv) != len(args.send_specs):
            raise UsageError("give one --recv-spec per --send-spec, in the same order")
        return list(args.send_specs), recv
    mongrel2_conf = importlib.import_module("mongrel2_conf")
    try:
        found = [
            mongrel2_conf.find_handler(args.config, *_handler_and_server(name))
            for name in args.handler
        ]
    except mongrel2_conf.ConfigError as exc:
        raise ConfigError(str(exc)) from exc
    return [h.send_spec for h in found], [h.recv_spec for h in found]


def run(args: argparse.Namespace) -> int:
    """Entry point of ``m2bridge relay``."""
    try:
        specs, recv_specs = handler_specs(args)
        setup_logging(args.log_level)
    except UsageError as exc:
        args.parser.error(str(exc))  # exits 2
    except ConfigError as exc:
        return _fail(exc)
    from m2bridge.relay import router as relay

    try:
        return relay.main(specs, args.bind, recv_specs, resend=args.resend)
    except KeyboardInterrupt:
        return 1


def _fail(exc: BaseException) -> int:
    print(f"m2bridge relay: error: {exc}", file=sys.stderr)
    return 1
