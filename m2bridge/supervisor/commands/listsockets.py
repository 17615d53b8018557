"""``listsockets``: the listening sockets the supervisor holds for its watchers.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, table


class ListsocketsCommand(Command):
    """listsockets: name, fd number and bound address of every [sockets.NAME]."""

    name = "listsockets"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return {"sockets": view.sockets()}

    def format(self, data: dict[str, Any]) -> str:
        rows = [(s["name"], s["fd"], s["address"]) for s in data["sockets"]]
        return table(("SOCKET", "FD", "ADDRESS"), rows)
