"""``stop NAME``: stop every process of a watcher gracefully and keep it stopped.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, name_arg, parse_name


class StopCommand(Command):
    """stop NAME: stop every process of watcher NAME gracefully (stop_signal, then SIGKILL
    after graceful_timeout) and do not respawn them."""

    name = "stop"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return view.stop(str(name_arg(args)))

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: stopping"
