"""What every control command shares: the ``Command`` shape, the narrow supervisor view it
runs against, argument helpers and table formatting.

A command runs in two places: ``parse_args`` and ``format`` in the client (the CLI), and
``execute`` in the supervisor, against a ``SupervisorView`` (never the whole arbiter).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from m2bridge.errors import ControlError
from m2bridge.supervisor.control import MAX_PROCESSES, Errno


class UsageError(ControlError):
    """Bad command-line arguments for a command (the CLI exits 2)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, Errno.BAD_ARGUMENTS)


class SupervisorView(Protocol):
    """What commands may see and change in the running supervisor.

    Methods taking a watcher ``name`` raise ControlError(errno NO_SUCH_WATCHER) for an unknown one.
    """

    def watcher_names(self) -> list[str]: ...

    def watcher_status(self, name: str) -> dict[str, Any]: ...

    def numprocesses(self, name: str) -> int: ...

    def set_numprocesses(self, name: str, count: int) -> int: ...

    def process_stats(self, name: str) -> list[dict[str, Any]]: ...

    def watcher_report(self, name: str) -> dict[str, Any]: ...

    def mongrel2_status(self) -> list[dict[str, Any]]: ...

    def supervisor_stats(self) -> dict[str, Any]: ...

    def reload(self, name: str) -> dict[str, Any]: ...

    def restart(self, name: str) -> dict[str, Any]: ...

    def start(self, name: str) -> dict[str, Any]: ...

    def stop(self, name: str) -> dict[str, Any]: ...

    def send_signal(self, name: str, signal: str) -> int: ...

    def sockets(self) -> list[dict[str, Any]]: ...

    def quit(self) -> None: ...


class Command:
    """A control command. Subclasses set ``name``; their docstring is the help text
    (first line: usage)."""

    name = ""

    @property
    def usage(self) -> str:
        """``incr NAME [N]``: the docstring's first line up to its colon."""
        return (self.__doc__ or self.name).strip().splitlines()[0].partition(":")[0]

    @property
    def help(self) -> str:
        return (self.__doc__ or self.name).strip()

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        """Client side: command-line words -> ``args``. Raises UsageError."""
        if argv:
            raise UsageError(f"{self.name} takes no arguments (usage: {self.usage})")
        return {}

    def execute(self, view: SupervisorView, args: dict[str, Any]) -> dict[str, Any]:
        """Supervisor side: do it and return the data. Raises ControlError."""
        raise NotImplementedError

    def format(self, data: dict[str, Any]) -> str:
        """Client side: data -> text for a human."""
        return "\n".join(f"{key}: {value}" for key, value in data.items())


class ProcessCountCommand(Command):
    """A command taking ``NAME [N]`` and answering with the watcher's process count."""

    def parse_args(self, argv: Sequence[str]) -> dict[str, Any]:
        return parse_name_count(self, argv)

    def format(self, data: dict[str, Any]) -> str:
        return f"{data['name']}: {data['numprocesses']} processes"


def parse_name(command: Command, argv: Sequence[str], optional: bool = False) -> dict[str, Any]:
    """``NAME`` (or nothing when ``optional``)."""
    if len(argv) > 1 or (not argv and not optional):
        raise UsageError(f"usage: {command.usage}")
    return {"name": argv[0]} if argv else {}


def parse_name_count(command: Command, argv: Sequence[str]) -> dict[str, Any]:
    """``NAME [N]`` with N a non-negative integer."""
    if not 1 <= len(argv) <= 2:
        raise UsageError(f"usage: {command.usage}")
    args: dict[str, Any] = {"name": argv[0]}
    if len(argv) == 2:
        if not argv[1].isdigit():
            raise UsageError(f"{command.name}: N must be a non-negative integer, got {argv[1]!r}")
        args["n"] = int(argv[1])
    return args


def name_arg(args: dict[str, Any], required: bool = True) -> str | None:
    """The ``name`` argument, checked (server side)."""
    name = args.get("name")
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name:
        raise ControlError("argument 'name' (a watcher name) is required", Errno.BAD_ARGUMENTS)
    return name


def count_arg(args: dict[str, Any], default: int | None) -> int | None:
    """The ``n`` argument: a non-negative integer, or ``default`` when absent."""
    n = args.get("n", default)
    if n is None:
        return None
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_PROCESSES:
        raise ControlError(
            f"argument 'n' must be an integer from 0 to {MAX_PROCESSES}, got {n!r:.40}",
            Errno.BAD_ARGUMENTS,
        )
    return n


def each_name(view: SupervisorView, args: dict[str, Any]) -> list[str]:
    """The named watcher, or all of them."""
    name = name_arg(args, required=False)
    return [name] if name is not None else view.watcher_names()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; None prints as ``-``."""
    cells = [[str(h) for h in headers]]
    cells += [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def human_bytes(value: object) -> str:
    """``12.3M`` for a byte count; ``-`` when unknown."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "-"
    size = float(value)
    for unit in ("B", "K", "M"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"
