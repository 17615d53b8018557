"""``decr NAME [N]``: run N fewer processes (the highest slots stop gracefully).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import (
    Command,
    SupervisorView,
    count_arg,
    name_arg,
    parse_name_count,
)


class DecrCommand(Command):
    """decr NAME [N]: run N fewer processes of watcher NAME (default 1); the highest slots
    stop gracefully, finishing the requests they hold."""

    name = "decr"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name_count(self, argv)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        count = max(0, view.numprocesses(name) - (count_arg(args, 1) or 0))
        return {"name": name, "numprocesses": view.set_numprocesses(name, count)}

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: {data['numprocesses']} processes"
