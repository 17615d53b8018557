"""``m2bridge ctl COMMAND [ARGS]``: control a running supervisor (list, incr, stats, reload...).

Which supervisor: ``--endpoint``, ``--stack FILE``, ``--name NAME``, ``$M2BRIDGE_CONTROL``, or
the only one running for this user. Human output by default, ``--json`` for scripts.
Exit codes: 0 ok, 1 command error, 2 usage, 3 supervisor unreachable, 4 (``status`` only) a
watcher is not running as asked or a Mongrel2 fails to answer on its control port (the stack
is not healthy: the supervisor's ``/healthz`` answers 503 then).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2bridge import environment
from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.commands import COMMANDS, UsageError
from m2bridge.supervisor.commands.status import problems_of
from m2bridge.supervisor.control import Errno
from m2bridge.supervisor.stack import (
    CONTROL_SOCKET,
    default_endpoint,
    default_rundir,
    load_stack,
    runtime_base,
)

if TYPE_CHECKING:
    from m2bridge.supervisor.client import ControlClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_NOT_AS_ASKED = 4  # status: not healthy (a watcher not as asked, a Mongrel2 not answering)
SETTLED = ("active", "stopped", "failed")


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    listing = "\n".join(f"  {c.usage}" for c in COMMANDS.values())
    parser = subparsers.add_parser(
        "ctl",
        help="control a running supervisor (list, status, incr, decr, stats, reload, quit...)",
        description="Send one command to a running supervisor.",
        epilog=f"commands:\n{listing}\n\n`m2bridge ctl help COMMAND` explains one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_endpoint_options(parser)
    parser.add_argument("--json", action="store_true", help="print the raw JSON data")
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="after the command, wait until the watchers settle (or the supervisor exits)",
    )
    parser.add_argument("command", metavar="COMMAND", help="a command, or `help`")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    parser.set_defaults(run=run)


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick a supervisor (shared with ``m2bridge top``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-e", "--endpoint", help="control endpoint (ipc://PATH or tcp://HOST:PORT)")
    group.add_argument("-s", "--stack", help="the stack file the supervisor runs")
    group.add_argument("-n", "--name", help="the stack name (or `serve` app name)")
    parser.add_argument("--token-file", help="file holding the token of a tcp:// endpoint")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")


def run(args: argparse.Namespace) -> int:
    if args.command == "help":
        return _help(args.args)
    command = COMMANDS.get(args.command)
    if command is None:
        print(
            f"m2bridge ctl: unknown command {args.command!r} (try `m2bridge ctl help`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        request_args = command.parse_args(args.args)
    except UsageError as exc:
        print(f"m2bridge ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return call(args, command.name, request_args)


def call(args: argparse.Namespace, name: str, request_args: dict[str, Any]) -> int:
    """Send one command and print its result; returns the exit code."""
    try:
        with make_client(args) as client:
            data = client.call(name, request_args)
            if args.wait > 0:
                _wait(client, name, request_args, args.wait)
    except ConfigError as exc:
        print(f"m2bridge ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as exc:
        return _print_error(args, exc)
    print(json.dumps(data, indent=2) if args.json else COMMANDS[name].format(data))
    if name == "status" and problems_of(data["watchers"], data.get("mongrel2", [])):
        return EXIT_NOT_AS_ASKED
    return EXIT_OK


def make_client(args: argparse.Namespace) -> ControlClient:
    """A client for the supervisor the options name.

    Raises:
        ConfigError: the options do not name exactly one supervisor.
        ControlError: none is running (errno UNREACHABLE).
    """
    from m2bridge.supervisor.client import ControlClient

    endpoint, token = resolve_endpoint(args)
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"--token-file: cannot read {args.token_file}: {exc.strerror}"
            ) from exc
    token = token or os.environ.get(environment.TOKEN)
    return ControlClient(endpoint, timeout=args.timeout, token=token)


def resolve_endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """(endpoint, token) from the options, the environment or the runtime directory."""
    if args.endpoint:
        return args.endpoint, None
    if args.stack:
        stack = load_stack(args.stack)
        return stack.control.endpoint, stack.control.token
    if args.name:
        return default_endpoint(default_rundir(args.name)), None
    if os.environ.get(environment.CONTROL):
        return os.environ[environment.CONTROL], None
    found = sorted(runtime_base().glob(f"*/{CONTROL_SOCKET}"))
    if len(found) == 1:
        return f"ipc://{found[0]}", None
    if not found:
        raise ControlError(
            f"no supervisor running (nothing in {runtime_base()})", Errno.UNREACHABLE
        )
    names = ", ".join(path.parent.name for path in found)
    raise ConfigError(f"several supervisors are running ({names}): pick one with --name")


def _print_error(args: argparse.Namespace, exc: ControlError) -> int:
    if args.json:
        print(json.dumps({"error": str(exc), "errno": exc.errno}))
    else:
        print(f"m2bridge ctl: {exc}", file=sys.stderr)
    return EXIT_UNREACHABLE if exc.errno == Errno.UNREACHABLE else EXIT_FAILED


def _help(words: list[str]) -> int:
    if not words:
        print("\n".join(command.help.splitlines()[0] for command in COMMANDS.values()))
        return EXIT_OK
    command = COMMANDS.get(words[0])
    if command is None:
        print(f"m2bridge ctl: unknown command {words[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    print(command.help)
    return EXIT_OK


def _wait(client: ControlClient, name: str, request_args: dict[str, Any], timeout: float) -> None:
    """Poll ``status`` until the watchers settle, or (for ``quit``) the supervisor is gone.

    Raises:
        ControlError: still not settled after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    target = {"name": request_args["name"]} if "name" in request_args else {}
    while time.monotonic() < deadline:
        try:
            states = [w["state"] for w in client.call("status", target)["watchers"]]
        except ControlError as exc:
            if name == "quit" and exc.errno == Errno.UNREACHABLE:
                return
            raise
        if name != "quit" and all(state in SETTLED for state in states):
            return
        time.sleep(0.1)
    raise ControlError(f"{name}: not settled after {timeout:g} s", Errno.COMMAND_FAILED)
