"""``m2bridge ctl COMMAND [ARGS]``: control a running supervisor (list, incr, stats, reload...).

Which supervisor: ``--endpoint``, ``--stack FILE``, ``--name NAME``, ``$M2BRIDGE_CONTROL``, or
the only one running for this user. Human output by default, ``--json`` for scripts.
Several supervisors (``-e`` repeated, or ``--deployment FILE``): a read command is asked of each
at once and shown as one table (``cli/overview.py``); any other needs ``--all``.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2bridge import environment
from m2bridge.cli import overview
from m2bridge.cli.deployment import SupervisorAddress, load_deployment
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
EXIT_OF = {
    overview.UNREACHABLE: EXIT_UNREACHABLE,
    overview.FAILED: EXIT_FAILED,
    overview.UNHEALTHY: EXIT_NOT_AS_ASKED,
    overview.OK: EXIT_OK,
}
#: Most supervisors asked at the same time (each in its own thread, each bounded by --timeout).
MAX_PARALLEL = 32


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
    parser.add_argument(
        "--all",
        action="store_true",
        help="with several supervisors, run a command that changes something on each of them",
    )
    parser.add_argument("command", metavar="COMMAND", help="a command, or `help`")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    parser.set_defaults(run=run)


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick a supervisor (shared with ``m2bridge top``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-e",
        "--endpoint",
        action="append",
        help="control endpoint (ipc://PATH or tcp://HOST:PORT); repeat it for several",
    )
    group.add_argument("-s", "--stack", help="the stack file the supervisor runs")
    group.add_argument("-n", "--name", help="the stack name (or `serve` app name)")
    group.add_argument(
        "--deployment",
        metavar="FILE",
        help="a deployment file: [[supervisor]] tables of name, endpoint and token or token_file",
    )
    parser.add_argument("--token-file", help="file holding the token of the -e endpoints")
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
    words = [word for word in args.args if word != "--all"]  # `incr w --all` reads naturally
    args.all = args.all or len(words) != len(args.args)
    try:
        request_args = command.parse_args(words)
        supervisors = resolve_supervisors(args)
    except (UsageError, ConfigError) as exc:
        print(f"m2bridge ctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as exc:
        return _print_error(args, exc)
    if len(supervisors) == 1 and not args.deployment:
        return call(args, supervisors[0], command.name, request_args)
    return call_each(args, supervisors, command.name, request_args)


def call(
    args: argparse.Namespace,
    supervisor: SupervisorAddress,
    name: str,
    request_args: dict[str, Any],
) -> int:
    """Send one command to one supervisor and print its result; returns the exit code."""
    try:
        with connect(supervisor, args.timeout) as client:
            data = client.call(name, request_args)
            if args.wait > 0:
                _wait(client, name, request_args, args.wait)
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
    supervisors = resolve_supervisors(args)
    if len(supervisors) > 1:
        raise ConfigError(
            f"this command talks to one supervisor; the options name {len(supervisors)}"
        )
    return connect(supervisors[0], args.timeout)


def connect(supervisor: SupervisorAddress, timeout: float) -> ControlClient:
    """A client for ``supervisor``."""
    from m2bridge.supervisor.client import ControlClient

    return ControlClient(supervisor.endpoint, timeout=timeout, token=supervisor.token)


def resolve_supervisors(args: argparse.Namespace) -> list[SupervisorAddress]:
    """Every supervisor the options name (one, unless ``-e`` is repeated or a deployment file
    is given), each with its token.

    Raises:
        ConfigError: a bad deployment file, an unreadable token file, or no one supervisor.
        ControlError: no supervisor is running (errno UNREACHABLE).
    """
    if args.deployment:
        if args.token_file:
            raise ConfigError("--token-file is for -e endpoints: a deployment file names tokens")
        return load_deployment(args.deployment)
    if args.endpoint and len(args.endpoint) > 1:
        token = _token_file(args) or os.environ.get(environment.TOKEN)
        return [SupervisorAddress(e, e, token) for e in args.endpoint]
    endpoint, token = resolve_endpoint(args)
    if args.token_file:
        token = _token_file(args)
    token = token or os.environ.get(environment.TOKEN)
    return [SupervisorAddress(endpoint, endpoint, token)]


def _token_file(args: argparse.Namespace) -> str | None:
    if not args.token_file:
        return None
    try:
        return Path(args.token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"--token-file: cannot read {args.token_file}: {exc.strerror}") from exc


def resolve_endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """(endpoint, token) from the options, the environment or the runtime directory."""
    if args.endpoint:
        return args.endpoint[0], None
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


def call_each(
    args: argparse.Namespace,
    supervisors: Sequence[SupervisorAddress],
    name: str,
    request_args: dict[str, Any],
) -> int:
    """Send one command to several supervisors and print the merged result; returns the exit
    code. A command that changes something is refused (exit 2) without ``--all``."""
    if name not in overview.READ_COMMANDS and len(supervisors) > 1 and not args.all:
        names = ", ".join(s.name for s in supervisors)
        print(
            f"m2bridge ctl: {name} would run on {len(supervisors)} supervisors ({names}): "
            "add --all to mean it, or name one with -e",
            file=sys.stderr,
        )
        return EXIT_USAGE

    def ask(client: ControlClient) -> dict[str, Any]:
        data = client.call(name, request_args)
        if args.wait > 0:
            _wait(client, name, request_args, args.wait)
        return data

    answers = ask_each(supervisors, args.timeout, ask)
    if args.json:
        print(json.dumps(overview.to_json(answers), indent=2))
    else:
        print(overview.format_answers(name, answers))
    return EXIT_OF[overview.outcome(name, answers)]


def ask_each(
    supervisors: Sequence[SupervisorAddress],
    timeout: float,
    ask: Callable[[ControlClient], dict[str, Any]],
) -> list[overview.Answer]:
    """``ask(client)`` of every supervisor at the same time (each bounded by ``timeout``);
    the answers in the order of ``supervisors``."""

    def one(supervisor: SupervisorAddress) -> overview.Answer:
        try:
            with connect(supervisor, timeout) as client:
                data = ask(client)
        except ControlError as exc:
            return overview.Answer(supervisor.name, supervisor.endpoint, None, str(exc), exc.errno)
        return overview.Answer(supervisor.name, supervisor.endpoint, data)

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(supervisors))) as pool:
        return list(pool.map(one, supervisors))


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
