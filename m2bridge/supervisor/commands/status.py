"""``status [NAME]``: each watcher's state and process counts.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import (
    Command,
    SupervisorView,
    each_name,
    parse_name,
    table,
)


class StatusCommand(Command):
    """status [NAME]: state (active, starting, reloading, backoff, failed, stopped...) and
    process counts of one watcher or all of them."""

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
        return table(("WATCHER", "STATE", "PROCS", "READY", "STOPPING", "REASON"), rows)
