"""The control commands: an explicit registry, one small module per command.

``COMMANDS`` maps a name to its command object; ``run`` executes one in the supervisor.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from typing import Any

from m2bridge.errors import ControlError
from m2bridge.supervisor.commands.base import Command, SupervisorView, UsageError
from m2bridge.supervisor.commands.decr import DecrCommand
from m2bridge.supervisor.commands.dstats import DstatsCommand
from m2bridge.supervisor.commands.incr import IncrCommand
from m2bridge.supervisor.commands.list import ListCommand
from m2bridge.supervisor.commands.listsockets import ListsocketsCommand
from m2bridge.supervisor.commands.numprocesses import NumprocessesCommand
from m2bridge.supervisor.commands.quit import QuitCommand
from m2bridge.supervisor.commands.reload import ReloadCommand
from m2bridge.supervisor.commands.restart import RestartCommand
from m2bridge.supervisor.commands.sendsignal import SignalCommand
from m2bridge.supervisor.commands.start import StartCommand
from m2bridge.supervisor.commands.stats import StatsCommand
from m2bridge.supervisor.commands.status import StatusCommand
from m2bridge.supervisor.commands.stop import StopCommand
from m2bridge.supervisor.control import Errno

COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        ListCommand(),
        StatusCommand(),
        IncrCommand(),
        DecrCommand(),
        NumprocessesCommand(),
        StatsCommand(),
        DstatsCommand(),
        ReloadCommand(),
        RestartCommand(),
        StartCommand(),
        StopCommand(),
        SignalCommand(),
        ListsocketsCommand(),
        QuitCommand(),
    )
}


def get_command(name: str) -> Command:
    """The command called ``name``.

    Raises:
        ControlError: no such command (errno UNKNOWN_COMMAND).
    """
    try:
        return COMMANDS[name]
    except KeyError:
        raise ControlError(f"unknown command {name!r}", Errno.UNKNOWN_COMMAND) from None


def run(view: SupervisorView, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Execute command ``name`` against ``view`` (supervisor side). Raises ControlError."""
    return get_command(name).execute(view, args)


__all__ = ["COMMANDS", "Command", "SupervisorView", "UsageError", "get_command", "run"]
