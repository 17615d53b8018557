"""``status [NAME]``: each watcher's state and process counts.
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
    them is not running as asked (stopped, starting, in backoff, failed...)."""

    name = "status"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return {"watchers": [view.watcher_status(name) for name in each_name(view, args)]}

    def format(self, data: dict[str, Any]) -> str:
        rows = [
            (
                w["name"],
                w["state"],
                f"{w['running']}/{w['numprocesses']}",
                w["ready"],
                w["stopping"],
                w["reason"] or "",
            )
            for w in data["watchers"]
        ]
        text = table(("WATCHER", "STATE", "PROCS", "READY", "STOPPING", "REASON"), rows)
        down = not_as_asked(data["watchers"])
        if down:
            listed = ", ".join(f"{w['name']} ({w['state']})" for w in down)
            text += f"\nnot running as asked: {listed}"
        return text


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
