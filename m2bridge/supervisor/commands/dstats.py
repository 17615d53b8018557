"""``dstats``: the supervisor process itself.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, human_bytes


class DstatsCommand(Command):
    """dstats: the supervisor's own pid, CPU % (over the last one to two seconds), RSS, open
    fds, uptime, watcher and process counts and commands served."""

    name = "dstats"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return view.supervisor_stats()

    def format(self, data: dict[str, Any]) -> str:
        shown = {**data, "rss": human_bytes(data.get("rss"))}
        return "\n".join(f"{key}: {value}" for key, value in shown.items())
