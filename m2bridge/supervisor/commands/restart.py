"""``restart [NAME]``: stop every process, then start new ones.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, name_arg, parse_name


class RestartCommand(Command):
    """restart [NAME]: stop every process of watcher NAME (default: all watchers), then
    start new ones (not rolling: use reload to keep serving)."""

    name = "restart"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return view.restart(name_arg(args, required=False) or "")

    def format(self, data: dict[str, Any]) -> str:
        return f"restarting {', '.join(data['watchers']) or 'nothing'}"
