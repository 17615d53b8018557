"""``incr NAME [N]``: run N more processes.
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


class IncrCommand(ProcessCountCommand):
    """incr NAME [N]: run N more processes of watcher NAME (default 1)."""

    name = "incr"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        count = view.numprocesses(name) + (count_arg(args, 1) or 0)
        return {"name": name, "numprocesses": view.set_numprocesses(name, count)}
