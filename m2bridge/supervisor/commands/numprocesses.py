"""``numprocesses NAME [N]``: show or set how many processes a watcher runs.
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


class NumprocessesCommand(Command):
    """numprocesses NAME [N]: show the process count of watcher NAME, or set it to N."""

    name = "numprocesses"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name_count(self, argv)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        count = count_arg(args, None)
        if count is not None:
            return {"name": name, "numprocesses": view.set_numprocesses(name, count)}
        return {"name": name, "numprocesses": view.numprocesses(name)}

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: {data['numprocesses']} processes"
