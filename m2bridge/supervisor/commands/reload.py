"""``reload [NAME]``: rolling replacement of every process.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView, name_arg, parse_name


class ReloadCommand(Command):
    """reload [NAME]: replace every process of watcher NAME (default: every watcher but
    mongrel2) one at a time; each new process is serving before an old one drains."""

    name = "reload"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name(self, argv, optional=True)

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        return view.reload(name_arg(args, required=False) or "")

    def format(self, data: dict[str, Any]) -> str:
        return f"reloading {', '.join(data['watchers']) or 'nothing'}"
