"""``stats [NAME]``: per process pid, slot, CPU %, RSS, open fds, age and request counters;
per watcher request totals, latency histograms and restarts; Mongrel2's own figures.

Its data is the one source of the numbers: ``ctl stats --json`` prints it and the supervisor's
``/metrics`` is made from it (``supervisor/exposition.py``).
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
    the worker's stats file. With --json also: CPU seconds per process; per watcher the
    request totals over its life (processes that ended included), the queue-time and
    app-time histograms and the restarts by reason; Mongrel2's open connections and tasks."""

    name = "stats"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        names = each_name(view, args)
        return {
            "watchers": [view.watcher_report(name) for name in names],
            "mongrel2": [m for m in view.mongrel2_status() if m["watcher"] in names],
        }

    def format(self, data: dict[str, Any]) -> str:
        blocks = [format_watcher(w) for w in data["watchers"]]
        blocks += [format_mongrel2(m) for m in data.get("mongrel2", [])]
        return "\n\n".join(blocks)


def process_row(p: dict[str, Any]) -> tuple[object, ...]:
    """One process's cells under ``HEADERS``."""
    return (
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


def format_watcher(watcher: dict[str, Any]) -> str:
    """One watcher's block: a title line and a table of its processes."""
    processes = watcher["processes"]
    rows = [process_row(p) for p in processes]
    title = f"{watcher['name']}: {len(processes)} processes"
    totals = watcher.get("totals")
    if totals:
        title += (
            f"; since start: {totals['served']} served, {totals['errors']} 5xx, "
            f"{totals['rejected']} 503, {totals['timed_out']} 504"
        )
    return f"{title}\n{table(HEADERS, rows)}"


def format_mongrel2(probe: dict[str, Any]) -> str:
    """One Mongrel2's control-port figures."""
    if not probe["answering"]:
        why = probe["error"] or "no answer yet"
        return f"{probe['watcher']} control port {probe['endpoint']}: {why}"
    return (
        f"{probe['watcher']} control port: {probe['connections']} open connections, "
        f"{probe['tasks']} tasks"
    )
