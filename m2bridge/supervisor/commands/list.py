"""``list``: the watchers' names.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView


class ListCommand(Command):
    """list: print the name of every watcher."""

    name = "list"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return {"watchers": view.watcher_names()}

    def format(self, data: dict[str, Any]) -> str:
        return "\n".join(data["watchers"])
