"""Mongrel2's control port in bytes: the status requests, their replies as tables, the endpoint.

Mongrel2 (1.12.2) answers on a ZeroMQ REP socket, ``ipc://run/control`` inside its chroot
unless the server row's ``control_port`` names another endpoint. A request is the tnetstring
of ``[command, {key: value}]``; a reply is a table or an error (captured from the real binary):

```
["status", {"what": "net"}]    -> {"headers": ["id", "fd", "type", "last_ping", ...],
                                   "rows": [[-1, 23, 0, 0, 0, 0, 0, 0], ...]}
["status", {"what": "tasks"}]  -> {"headers": ["id", "system", "name", "state", "status"],
                                   "rows": [[1, False, "SERVER", "read fd", "idle"], ...]}
["bogus", {}]                  -> {"code": "CALLBACK_NOT_FOUND",
                                   "error": "Callback requested was not found."}
```
(every string is bytes on the wire; an error may come without ``code``).
``what=net`` has one row per open client connection; ``what=tasks`` one per Mongrel2 task.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import tnetstring

#: What ``status`` can report (Mongrel2 refuses anything else).
STATUS_WHAT = ("net", "tasks")
#: The column that marks each table (present in the real headers, checked before counting).
NET_COLUMN = "fd"
TASKS_COLUMN = "state"
#: Where Mongrel2 binds its control port when ``control_port`` is empty (inside its chroot).
DEFAULT_CONTROL = "run/control"

Cell = int | float | bool | str | None


@dataclass(frozen=True)
class StatusTable:
    """One ``status`` reply: column names and rows (byte strings decoded to ``str``)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        """The rows as ``{header: cell}`` dicts."""
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


def encode_status_request(what: str) -> bytes:
    """The request ``status what=<what>``.

    Raises:
        ValueError: ``what`` is not one of ``STATUS_WHAT``.
    """
    if what not in STATUS_WHAT:
        raise ValueError(f"status what={what!r}: Mongrel2 only knows {' or '.join(STATUS_WHAT)}")
    encoded: bytes = tnetstring.dumps([b"status", {b"what": what.encode()}])
    return encoded


def parse_status_reply(data: bytes) -> StatusTable:
    """A ``status`` reply's table.

    Raises:
        ValueError: the reply is not one tnetstring of a table, or is Mongrel2's error reply.
    """
    reply = _decode(data)
    if not isinstance(reply, dict):
        raise ValueError(f"mongrel2 control reply is a {_kind(reply)}, not a table")
    if b"error" in reply or b"code" in reply:
        code = _text(reply.get(b"code", b""))
        error = _text(reply.get(b"error", b""))
        reason = ": ".join(part for part in (code, error) if part) or "no reason given"
        raise ValueError(f"mongrel2 refused the request: {reason}")
    headers = reply.get(b"headers")
    rows = reply.get(b"rows")
    if not isinstance(headers, list) or not isinstance(rows, list):
        raise ValueError(f"mongrel2 control reply has no headers and rows: {_preview(data)}")
    names = tuple(_header(value) for value in headers)
    return StatusTable(names, tuple(_row(number, row, names) for number, row in enumerate(rows)))


def open_connections(table: StatusTable) -> int:
    """How many client connections a ``what=net`` table lists (one row each).

    Raises:
        ValueError: ``table`` is not a ``what=net`` table.
    """
    _expect_column(table, NET_COLUMN, "net")
    return len(table.rows)


def task_count(table: StatusTable) -> int:
    """How many tasks a ``what=tasks`` table lists.

    Raises:
        ValueError: ``table`` is not a ``what=tasks`` table.
    """
    _expect_column(table, TASKS_COLUMN, "tasks")
    return len(table.rows)


def control_endpoint(control_port: str, chroot: str, as_root: bool) -> str:
    """The endpoint to connect to for Mongrel2's control port, as seen from outside its chroot.

    ``control_port`` is the server row's column; ``as_root`` whether Mongrel2 runs as root. As
    root it chroots to ``chroot`` (absolute), so every ipc path, relative or absolute, lies inside
    it. As non-root it does not chroot: an absolute ipc path is used as is, and a relative one
    is resolved against its working directory, so pass that directory as ``chroot`` (the same
    when the server's chroot is ``./``; measured on 1.12.2). Empty means the default
    ``ipc://run/control``. ``tcp://`` is used as is, except that a wildcard host (``*``, which
    cannot be connected to) becomes 127.0.0.1.

    Raises:
        ValueError: ``control_port`` is not an ``ipc://`` or ``tcp://`` endpoint, or ``chroot``
            is not absolute.
    """
    endpoint = control_port.strip() or f"ipc://{DEFAULT_CONTROL}"
    if endpoint.startswith("tcp://") and len(endpoint) > len("tcp://"):
        return endpoint.replace("tcp://*:", "tcp://127.0.0.1:", 1)
    path = endpoint.removeprefix("ipc://")
    if path == endpoint or not path:
        raise ValueError(
            f"mongrel2 control_port {control_port!r} is not an ipc:// or tcp:// endpoint"
        )
    if path.startswith("/") and not as_root:
        return endpoint
    if not chroot.startswith("/"):
        raise ValueError(f"mongrel2 chroot {chroot!r} must be an absolute path")
    # Inside a chroot, ".." cannot climb above its root: normalize as an absolute path first.
    inner = posixpath.normpath("/" + path.lstrip("/"))
    return f"ipc://{chroot.rstrip('/')}{inner}"


def _decode(data: bytes) -> Any:
    try:
        value, rest = tnetstring.pop(data)
    except Exception as exc:  # the C decoder also raises TypeError, RecursionError...
        raise ValueError(
            f"mongrel2 control reply is not a tnetstring ({exc}): {_preview(data)}"
        ) from exc
    if rest:
        raise ValueError(f"mongrel2 control reply has {len(rest)} bytes after its tnetstring")
    return value


def _header(value: object) -> str:
    if not isinstance(value, bytes):
        raise ValueError(f"mongrel2 control reply has a {_kind(value)} header, not a string")
    return _text(value)


def _row(number: int, row: object, names: tuple[str, ...]) -> tuple[Cell, ...]:
    if not isinstance(row, list) or len(row) != len(names):
        raise ValueError(
            f"mongrel2 control reply row {number} is not a list of {len(names)} cells: {row!r:.80}"
        )
    return tuple(_cell(number, name, value) for name, value in zip(names, row, strict=True))


def _cell(number: int, name: str, value: object) -> Cell:
    if isinstance(value, bytes):
        return _text(value)
    if value is None or isinstance(value, int | float):  # bool is an int
        return value
    raise ValueError(f"mongrel2 control reply row {number} has a {_kind(value)} in {name!r}")


def _expect_column(table: StatusTable, column: str, what: str) -> None:
    if column not in table.headers:
        raise ValueError(
            f"not a status what={what} table (columns: {', '.join(table.headers) or 'none'})"
        )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _kind(value: object) -> str:
    return type(value).__name__


def _preview(data: bytes) -> str:
    return repr(data[:60]) + ("..." if len(data) > 60 else "")
