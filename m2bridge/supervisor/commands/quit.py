"""``quit``: graceful shutdown of the whole stack.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.supervisor.commands.base import Command, SupervisorView


class QuitCommand(Command):
    """quit: stop every watcher gracefully (handlers drain their requests first, mongrel2
    last) and exit the supervisor."""

    name = "quit"

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        view.quit()
        return {"quitting": True}

    def format(self, data: dict[str, Any]) -> str:
        return "quitting"
