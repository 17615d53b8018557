"""``numprocesses NAME [N]``: show or set how many processes a watcher runs.
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


class NumprocessesCommand(ProcessCountCommand):
    """numprocesses NAME [N]: show the process count of watcher NAME, or set it to N."""

    name = "numprocesses"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        count = count_arg(args, None)
        if count is not None:
            return {"name": name, "numprocesses": view.set_numprocesses(name, count)}
        return {"name": name, "numprocesses": view.numprocesses(name)}
