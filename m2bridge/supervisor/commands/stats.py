"""``stats [NAME]``: per process pid, slot, CPU %, RSS, open fds, age and request counters.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import (
    Command,
    SupervisorView,
    each_name,
    human_bytes,
    parse_name,
    table,
)

HEADERS = ("PID", "WID", "STATE", "CPU%", "RSS", "FDS", "AGE", "SERVED", "IN-FLIGHT", "503", "504")


class StatsCommand(Command):
    """stats [NAME]: per process of one watcher or all: pid, wid, state, CPU % (over the last
    one to two seconds; since its start for a younger process), RSS, open fds, age (s),
    requests served, in flight, refused with 503 (overload) and answered 504 (timeout), from
    the worker's stats file."""

    name = "stats"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "watchers": [
                {"name": name, "processes": view.process_stats(name)}
                for name in each_name(view, args)
            ]
        }

    def format(self, data: dict[str, Any]) -> str:
        return "\n\n".join(format_watcher(w) for w in data["watchers"])


def format_watcher(watcher: dict[str, Any]) -> str:
    """One watcher's block: a title line and a table of its processes."""
    processes = watcher["processes"]
    rows = [
        (
            p["pid"],
            p["wid"],
            p["state"],
            p["cpu"],
            human_bytes(p["rss"]),
            p["fds"],
            p["age"],
            p["served"],
            p["in_flight"],
            p.get("rejected"),
            p.get("timed_out"),
        )
        for p in processes
    ]
    title = f"{watcher['name']}: {len(processes)} processes"
    return f"{title}\n{table(HEADERS, rows)}"
