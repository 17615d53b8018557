"""``m2bridge top``: a live terminal view of ``stats``, refreshed every ``--interval`` seconds.

One block per watcher (state, counts, and a row per process: pid, wid, CPU %, RSS, fds, age,
requests served and in flight), under a header about the supervisor itself. Ctrl-C quits.
Several supervisors (``-e`` repeated, or ``--deployment FILE``): one screen, a block per
supervisor, all asked at once each refresh; one that does not answer is a line saying so.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from m2bridge.cli import overview
from m2bridge.cli.ctl import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    add_endpoint_options,
    ask_each,
    connect,
    resolve_supervisors,
)
from m2bridge.cli.deployment import SupervisorAddress
from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.commands.base import human_bytes
from m2bridge.supervisor.commands.stats import format_watcher
from m2bridge.supervisor.control import Errno

if TYPE_CHECKING:
    from m2bridge.supervisor.client import ControlClient

CLEAR = "\x1b[H\x1b[2J"


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "top",
        help="live view of every watcher and process of a running supervisor",
        description="Refresh the supervisor's stats (per watcher and process) until Ctrl-C.",
    )
    add_endpoint_options(parser)
    parser.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between views")
    parser.add_argument("--iterations", type=int, default=0, help="stop after N views (0: never)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        supervisors = resolve_supervisors(args)
        if len(supervisors) > 1 or args.deployment:
            return _loop_each(supervisors, args)
        with connect(supervisors[0], args.timeout) as client:
            return _loop(client, args.interval, args.iterations)
    except ConfigError as exc:
        print(f"m2bridge top: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as exc:
        print(f"m2bridge top: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.errno == Errno.UNREACHABLE else EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


def _loop(client: ControlClient, interval: float, iterations: int) -> int:
    shown = 0
    while True:
        view = render(client.call("dstats"), client.call("status"), client.call("stats"))
        clear = CLEAR if sys.stdout.isatty() else ""
        sys.stdout.write(f"{clear}{view}\n")
        sys.stdout.flush()
        shown += 1
        if iterations and shown >= iterations:
            return EXIT_OK
        time.sleep(interval)


def _loop_each(supervisors: Sequence[SupervisorAddress], args: argparse.Namespace) -> int:
    """Like ``_loop``, one block per supervisor; exits 3 after the last view if one of them
    did not answer it."""
    shown = 0
    while True:
        answers = ask_each(supervisors, args.timeout, _screen_data)
        clear = CLEAR if sys.stdout.isatty() else ""
        sys.stdout.write(f"{clear}{render_each(answers)}\n")
        sys.stdout.flush()
        shown += 1
        if args.iterations and shown >= args.iterations:
            return (
                EXIT_UNREACHABLE if overview.outcome("stats", answers) != overview.OK else EXIT_OK
            )
        time.sleep(args.interval)


def _screen_data(client: ControlClient) -> dict[str, Any]:
    return {name: client.call(name) for name in ("dstats", "status", "stats")}


def render(dstats: dict[str, Any], status: dict[str, Any], stats: dict[str, Any]) -> str:
    """The whole screen as text."""
    header = f"m2bridge top - stack {dstats.get('stack')} - {time.strftime('%H:%M:%S')}"
    return "\n\n".join([f"{header}\n{_supervisor_line(dstats)}", *_blocks(status, stats)])


def render_each(answers: Sequence[overview.Answer]) -> str:
    """The whole screen for several supervisors: a block each (or a line why not)."""
    blocks = [f"m2bridge top - {len(answers)} supervisors - {time.strftime('%H:%M:%S')}"]
    for answer in answers:
        if answer.data is None:
            blocks.append(f"== {overview.describe_failure(answer)}")
            continue
        dstats = answer.data["dstats"]
        title = f"== {answer.name} ({answer.endpoint}) - stack {dstats.get('stack')}"
        blocks.append(f"{title}\n{_supervisor_line(dstats)}")
        blocks += _blocks(answer.data["status"], answer.data["stats"])
    return "\n\n".join(blocks)


def _supervisor_line(dstats: dict[str, Any]) -> str:
    return (
        f"supervisor pid {dstats.get('pid')}  cpu {dstats.get('cpu')}%  "
        f"rss {human_bytes(dstats.get('rss'))}  fds {dstats.get('fds')}  "
        f"up {dstats.get('age')} s  processes {dstats.get('processes')}"
    )


def _blocks(status: dict[str, Any], stats: dict[str, Any]) -> list[str]:
    """A block per watcher: its processes and its state."""
    states = {w["name"]: w for w in status["watchers"]}
    blocks = []
    for watcher in stats["watchers"]:
        info = states.get(watcher["name"], {})
        line = f"[{info.get('state', '?')}] {info.get('reason') or ''}".rstrip()
        blocks.append(f"{format_watcher(watcher)}\n{line}")
    return blocks
