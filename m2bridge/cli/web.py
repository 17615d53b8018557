"""``m2bridge web``: a live web console for a running supervisor (charts and control buttons).

The supervisor is picked as by ``m2bridge ctl`` (``-e``/``-s``/``-n``, ``--token-file`` for a
tcp:// control endpoint's token); the page is served on ``--bind`` (default 127.0.0.1:9180).
A console token (``--web-token-file`` or ``$M2BRIDGE_WEB_TOKEN``) is required to listen on
anything but a loopback address. Exit codes: 0 stopped by TERM/INT, 1 cannot listen, 2 usage,
3 no supervisor to watch.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2bridge.cli.ctl import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, add_endpoint_options
from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.control import Errno

if TYPE_CHECKING:
    from m2bridge.web.server import WebSettings

WEB_TOKEN = "M2BRIDGE_WEB_TOKEN"
DEFAULT_BIND = "127.0.0.1:9180"
LOG_FORMAT = "%(asctime)s [web] %(levelname)s %(message)s"
#: A console token: long enough to resist guessing, and safe in a cookie and a header.
TOKEN_RULE = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "web",
        help="live web console of a running supervisor: charts and control buttons",
        description="Serve a web page with live charts of every watcher and process of a "
        "running supervisor, and buttons for incr, decr, reload, restart, stop and start.",
    )
    add_endpoint_options(parser)
    parser.add_argument(
        "--bind", default=DEFAULT_BIND, metavar="HOST:PORT", help=f"default {DEFAULT_BIND}"
    )
    parser.add_argument(
        "-i", "--interval", type=float, default=1.0, help="seconds between polls (default 1)"
    )
    parser.add_argument(
        "--web-token-file",
        metavar="FILE",
        help=f"file holding the console token (or ${WEB_TOKEN}); required off loopback",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = make_settings(args)
    except ConfigError as exc:
        print(f"m2bridge web: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as exc:
        print(f"m2bridge web: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.errno == Errno.UNREACHABLE else EXIT_FAILED
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    from m2bridge.web.server import serve

    return serve(settings)


def make_settings(args: argparse.Namespace) -> WebSettings:
    """The console's settings from the options.

    Raises:
        ConfigError: a bad option, or a non-loopback bind without a console token.
        ControlError: no supervisor to watch (errno UNREACHABLE).
    """
    from m2bridge.cli.ctl import make_client
    from m2bridge.web.server import WebSettings

    host, port = parse_bind(args.bind)
    if not MIN_INTERVAL <= args.interval <= MAX_INTERVAL:
        raise ConfigError(f"--interval must be from {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds")
    token = read_token(args.web_token_file, os.environ.get(WEB_TOKEN))
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"--bind {args.bind} is not a loopback address: give a console token "
            f"(--web-token-file FILE or ${WEB_TOKEN}) or bind 127.0.0.1"
        )
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"unknown --log-level {args.log_level!r}")
    with make_client(args) as client:  # the control endpoint and token, exactly as ctl finds them
        endpoint, control_token, timeout = client.endpoint, client.token, client.timeout
    return WebSettings(host, port, endpoint, control_token, timeout, token, args.interval)


def parse_bind(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (``[::1]:PORT`` for IPv6).

    Raises:
        ConfigError: not of that form, or the port is not 0 to 65535.
    """
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--bind must be HOST:PORT, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | None, environ_value: str | None) -> str | None:
    """The console token from ``--web-token-file`` (first) or the environment; None if none.

    Raises:
        ConfigError: the file cannot be read, or the token is too short or has characters a
            cookie cannot hold.
    """
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--web-token-file: cannot read {path}: {exc}") from exc
    elif environ_value:
        token = environ_value.strip()
    else:
        return None
    if not TOKEN_RULE.fullmatch(token):
        raise ConfigError(
            "the console token must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = - "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token
