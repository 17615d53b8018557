"""``status [NAME]``: each watcher's state and process counts, and the stack's health.

Healthy: every watcher runs as asked and every Mongrel2 answers on its control port. The
supervisor's ``/healthz`` answers 200 or 503 from this command's data, and ``ctl status``
exits 4 on the same ``problems``: the two always agree.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from m2bridge.supervisor.commands.base import (
    Command,
    SupervisorView,
    each_name,
    parse_name,
    table,
)

#: The states of a watcher whose processes all serve as the stack asks (a rolling reload
#: serves throughout, as systemd counts "reloading" as active).
AS_ASKED = ("active", "reloading")


class StatusCommand(Command):
    """status [NAME]: state (active, starting, reloading, backoff, failed, stopped...) and
    process counts of one watcher or all of them. `m2bridge ctl status` exits 4 when one of
    them is not running as asked (stopped, starting, in backoff, failed...) or a Mongrel2
    does not answer on its control port; the same verdict as the supervisor's /healthz."""

    name = "status"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        names = each_name(view, args)
        watchers = [view.watcher_status(name) for name in names]
        probes = [m for m in view.mongrel2_status() if m["watcher"] in names]
        problems = problems_of(watchers, probes)
        return {
            "watchers": watchers,
            "mongrel2": probes,
            "healthy": not problems,
            "problems": problems,
        }

    def format(self, data: dict[str, Any]) -> str:
        rows = [status_row(w) for w in data["watchers"]]
        text = table(("WATCHER", "STATE", "PROCS", "READY", "STOPPING", "REASON"), rows)
        for problem in problems_of(data["watchers"], data.get("mongrel2", [])):
            text += f"\n{problem}"
        return text


def status_row(w: dict[str, Any]) -> tuple[object, ...]:
    """One watcher's cells under WATCHER STATE PROCS READY STOPPING REASON."""
    return (
        w["name"],
        w["state"],
        f"{w['running']}/{w['numprocesses']}",
        w["ready"],
        w["stopping"],
        w["reason"] or "",
    )


def problems_of(watchers: Iterable[dict[str, Any]], probes: Iterable[dict[str, Any]]) -> list[str]:
    """Why the stack is not healthy (empty: it is): watchers not running as asked, and
    Mongrel2s whose control port failed to answer (not asked yet, or not running, is no
    failure: the watcher's own row says so)."""
    problems = []
    down = not_as_asked(watchers)
    if down:
        listed = ", ".join(f"{w['name']} ({w['state']})" for w in down)
        problems.append(f"not running as asked: {listed}")
    for probe in probes:
        if probe.get("failing"):
            problems.append(
                f"{probe['watcher']}: control port {probe['endpoint']} fails: {probe['error']}"
            )
    return problems


def not_as_asked(watchers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The watchers (status rows) whose processes do not all serve as asked."""
    return [w for w in watchers if not _as_asked(w)]


def _as_asked(watcher: dict[str, Any]) -> bool:
    if watcher["state"] in AS_ASKED:
        return True
    # scaled down while the extra processes drain: every process still asked for serves
    wanted = int(watcher["numprocesses"])
    return bool(
        watcher["state"] == "stopping" and 0 < wanted == watcher["running"] == watcher["ready"]
    )
