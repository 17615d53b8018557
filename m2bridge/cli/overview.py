"""One view of several supervisors: their answers to one command as one table or one JSON
document.

The table leads with a SUPERVISOR column; ``outcome`` gives the verdict the exit code comes
from. A supervisor that did not answer (or answered an error) is a line under the table; the
answers are in the order the supervisors were named.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from m2bridge.supervisor.commands import COMMANDS
from m2bridge.supervisor.commands.base import human_bytes, table
from m2bridge.supervisor.commands.stats import HEADERS as PROCESS_HEADERS
from m2bridge.supervisor.commands.stats import format_mongrel2, process_row
from m2bridge.supervisor.commands.status import problems_of, status_row
from m2bridge.supervisor.control import Errno

#: Commands that change nothing: sent to every supervisor named without ``--all``.
READ_COMMANDS = ("list", "status", "stats", "dstats", "listsockets")

#: The verdicts of ``outcome``, worst first.
UNREACHABLE, FAILED, UNHEALTHY, OK = "unreachable", "failed", "unhealthy", "ok"


@dataclass(frozen=True)
class Answer:
    """One supervisor's answer: its ``data``, or the ``error`` (and errno) it failed with."""

    name: str
    endpoint: str
    data: dict[str, Any] | None = None
    error: str = ""
    errno: int = 0

    @property
    def unreachable(self) -> bool:
        return self.data is None and self.errno == Errno.UNREACHABLE


def to_json(answers: Sequence[Answer]) -> dict[str, Any]:
    """``{"supervisors": [{"name", "endpoint", "data" | "error" and "errno"}]}``."""
    rows: list[dict[str, Any]] = []
    for answer in answers:
        row: dict[str, Any] = {"name": answer.name, "endpoint": answer.endpoint}
        if answer.data is None:
            row.update(error=answer.error, errno=answer.errno)
        else:
            row["data"] = answer.data
        rows.append(row)
    return {"supervisors": rows}


def outcome(command: str, answers: Sequence[Answer]) -> str:
    """UNREACHABLE if one did not answer, else FAILED if one answered an error, else (for
    ``status``) UNHEALTHY if one stack is not healthy, else OK."""
    if any(answer.unreachable for answer in answers):
        return UNREACHABLE
    if any(answer.data is None for answer in answers):
        return FAILED
    if command == "status" and any(_problems(answer.data or {}) for answer in answers):
        return UNHEALTHY
    return OK


def describe_failure(answer: Answer) -> str:
    """``web2: unreachable: no answer from ...`` (or ``web2: error: ...``)."""
    kind = "unreachable" if answer.unreachable else "error"
    return f"{answer.name}: {kind}: {answer.error}"


def format_answers(command: str, answers: Sequence[Answer]) -> str:
    """The text for a human: one merged table for a read command (none if no supervisor
    answered), a line per supervisor for any other; then a line per supervisor that failed."""
    answered = [answer for answer in answers if answer.data is not None]
    merge = MERGERS.get(command)
    if merge is None:
        lines = [f"{a.name}: {COMMANDS[command].format(a.data or {})}" for a in answered]
    else:
        lines = [merge(answered)] if answered else []
    lines += [describe_failure(answer) for answer in answers if answer.data is None]
    return "\n".join(lines)


def merge_list(answers: Sequence[Answer]) -> str:
    rows = [(a.name, watcher) for a in answers for watcher in _data(a)["watchers"]]
    return table(("SUPERVISOR", "WATCHER"), rows)


def merge_status(answers: Sequence[Answer]) -> str:
    rows = [(a.name, *status_row(w)) for a in answers for w in _data(a)["watchers"]]
    headers = ("SUPERVISOR", "WATCHER", "STATE", "PROCS", "READY", "STOPPING", "REASON")
    lines = [table(headers, rows)]
    lines += [f"{a.name}: {problem}" for a in answers for problem in _problems(_data(a))]
    return "\n".join(lines)


def merge_stats(answers: Sequence[Answer]) -> str:
    rows = [
        (a.name, w["name"], *process_row(p))
        for a in answers
        for w in _data(a)["watchers"]
        for p in w["processes"]
    ]
    lines = [table(("SUPERVISOR", "WATCHER", *PROCESS_HEADERS), rows)]
    lines += [
        f"{a.name}: {format_mongrel2(probe)}"
        for a in answers
        for probe in _data(a).get("mongrel2", [])
    ]
    return "\n".join(lines)


DSTATS_KEYS = ("stack", "pid", "cpu", "rss", "fds", "age", "watchers", "processes", "commands")
DSTATS_HEADERS = ("STACK", "PID", "CPU%", "RSS", "FDS", "UP", "WATCHERS", "PROCESSES", "COMMANDS")


def merge_dstats(answers: Sequence[Answer]) -> str:
    rows = [(a.name, *_dstats_cells(_data(a))) for a in answers]
    return table(("SUPERVISOR", *DSTATS_HEADERS), rows)


def _dstats_cells(data: dict[str, Any]) -> list[object]:
    return [human_bytes(data.get(k)) if k == "rss" else data.get(k) for k in DSTATS_KEYS]


def merge_listsockets(answers: Sequence[Answer]) -> str:
    rows = [
        (a.name, s["name"], s["fd"], s["address"]) for a in answers for s in _data(a)["sockets"]
    ]
    return table(("SUPERVISOR", "SOCKET", "FD", "ADDRESS"), rows)


MERGERS: dict[str, Callable[[Sequence[Answer]], str]] = {
    "list": merge_list,
    "status": merge_status,
    "stats": merge_stats,
    "dstats": merge_dstats,
    "listsockets": merge_listsockets,
}


def _data(answer: Answer) -> dict[str, Any]:
    return answer.data or {}


def _problems(data: dict[str, Any]) -> list[str]:
    return problems_of(data.get("watchers", []), data.get("mongrel2", []))
