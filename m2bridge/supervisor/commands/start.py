"""``start NAME``: run a stopped (or failed) watcher again.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, name_arg, parse_name


class StartCommand(Command):
    """start NAME: run watcher NAME again; clears a failed or flapping state."""

    name = "start"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return view.start(str(name_arg(args)))

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: starting"
