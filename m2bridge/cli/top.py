"""``m2bridge top``: a live terminal view of ``stats``, refreshed every ``--interval`` seconds.

One block per watcher (state, counts, and a row per process: pid, wid, CPU %, RSS, fds, age,
requests served and in flight), under a header about the supervisor itself. Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from m2bridge.cli.ctl import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    add_endpoint_options,
    make_client,
)
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
        with make_client(args) as client:
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


def render(dstats: dict[str, Any], status: dict[str, Any], stats: dict[str, Any]) -> str:
    """The whole screen as text."""
    header = (
        f"m2bridge top - stack {dstats.get('stack')} - {time.strftime('%H:%M:%S')}\n"
        f"supervisor pid {dstats.get('pid')}  cpu {dstats.get('cpu')}%  "
        f"rss {human_bytes(dstats.get('rss'))}  fds {dstats.get('fds')}  "
        f"up {dstats.get('age')} s  processes {dstats.get('processes')}"
    )
    states = {w["name"]: w for w in status["watchers"]}
    blocks = [header]
    for watcher in stats["watchers"]:
        info = states.get(watcher["name"], {})
        line = f"[{info.get('state', '?')}] {info.get('reason') or ''}".rstrip()
        blocks.append(f"{format_watcher(watcher)}\n{line}")
    return "\n\n".join(blocks)
