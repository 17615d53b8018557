"""``signal NAME SIG``: send a signal to every process of a watcher.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m2bridge.errors import ControlError
from m2bridge.supervisor.commands.base import Command, SupervisorView, UsageError, name_arg
from m2bridge.supervisor.control import Errno


class SignalCommand(Command):
    """signal NAME SIG: send signal SIG (a name such as HUP or USR1, or a number) to every
    running process of watcher NAME."""

    name = "signal"

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        if len(argv) != 2:
            raise UsageError(f"usage: {self.usage}")
        return {"name": argv[0], "signal": argv[1]}

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        name = str(name_arg(args))
        signal = args.get("signal")
        if not isinstance(signal, str) or not signal:
            raise ControlError("argument 'signal' is required", Errno.BAD_ARGUMENTS)
        sent = view.send_signal(name, signal)
        return {"name": name, "signal": signal.upper(), "processes": sent}

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: sent {data['signal']} to {data['processes']} processes"
