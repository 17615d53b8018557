"""``decr NAME [N]``: run N fewer processes (the highest slots stop gracefully).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.supervisor.commands.base import (
    ProcessCountCommand,
    SupervisorView,
    count_arg,
    name_arg,
)


class DecrCommand(ProcessCountCommand):
    """decr NAME [N]: run N fewer processes of watcher NAME (default 1); the highest slots
    stop gracefully, finishing the requests they hold."""

    name = "decr"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        count = max(0, view.numprocesses(name) - (count_arg(args, 1) or 0))
        return {"name": name, "numprocesses": view.set_numprocesses(name, count)}
