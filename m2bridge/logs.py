"""Logging for worker processes: the process-wide setup and the per-request access log.

The access log is one line per request in an Apache-combined-like format, with the duration
appended::

    127.0.0.1 - - [23/Nov/2026:06:16:42 +0000] "GET /a?b=1 HTTP/1.1" 200 13 "-" "curl/8" 1.234ms

It is written only when ``--access-log`` is given, so a worker without it does no per-request
formatting at all. ``--access-log-format FMT`` replaces that line by a gunicorn-like format of
``%(ATOM)s`` atoms (``ACCESS_ATOMS``; ``%(Q)s`` is the time the request waited in the worker's
queue, in milliseconds), and ``--log-format json`` makes both logs one JSON object per line
(``JsonFormatter``, ``AccessLog.log``). Both the ZeroMQ worker and the fd-path worker use this
module.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from m2bridge.errors import ConfigError

if TYPE_CHECKING:
    from m2bridge._types import Environ

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")
STDERR = "-"


def setup_logging(level: str, log_format: str = "text") -> None:
    """Send the ``m2bridge`` loggers (and the root logger) to stderr at ``level``, as text
    lines or (``log_format`` "json") one JSON object per line.

    Raises:
        ConfigError: ``level`` is not one of ``LOG_LEVELS``, or ``log_format`` not one of
            ``LOG_FORMATS``.
    """
    if level.lower() not in LOG_LEVELS:
        raise ConfigError(f"unknown log level {level!r}: choose from {', '.join(LOG_LEVELS)}")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"unknown log format {log_format!r}: choose from text, json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def iso_time(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) in ISO 8601, UTC, to the millisecond."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601), level, logger, pid, message, and
    exc_info (the traceback's text) when the record carries an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def request_line(environ: Environ) -> str:
    """The request line as the client sent it (``METHOD URI VERSION``), from the environ."""
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not uri:
        uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        if query:
            uri = f"{uri}?{query}"
    return f"{environ.get('REQUEST_METHOD', '-')} {uri} {environ.get('SERVER_PROTOCOL', '-')}"


def _uri(environ: Environ) -> str:
    return str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")


def _path(environ: Environ) -> str:
    """The URL path as the client sent it (without the query)."""
    uri = _uri(environ)
    if uri:
        return uri.partition("?")[0]
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))


def _query(environ: Environ) -> str:
    uri = _uri(environ)
    return uri.partition("?")[2] if uri else str(environ.get("QUERY_STRING") or "")


def _quoted(value: object) -> str:
    """A header value safe inside the double quotes of one log line."""
    if not value:
        return "-"
    text = str(value)
    if '"' in text or "\\" in text or not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return text


class _Entry:
    """One request, as the access log atoms see it."""

    __slots__ = ("body_bytes", "duration", "environ", "queue", "status", "timestamp")

    def __init__(
        self,
        environ: Environ,
        status: int | None,
        body_bytes: int,
        duration: float,
        queue: float,
        timestamp: Callable[[], str],
    ) -> None:
        self.environ = environ
        self.status = status or 0
        self.body_bytes = body_bytes
        self.duration = duration
        self.queue = queue
        self.timestamp = timestamp


#: The atoms of ``--access-log-format``, each a ``%(ATOM)s``: what it stands for, and how to
#: compute it. Also ``%({Header-Name}i)s`` (a request header) and ``%({KEY}e)s`` (an environ
#: key). Empty values are logged as ``-``.
ACCESS_ATOMS: dict[str, tuple[str, Callable[[_Entry], object]]] = {
    "h": ("remote address", lambda e: e.environ.get("REMOTE_ADDR")),
    "l": ("'-'", lambda e: "-"),
    "u": ("user name (REMOTE_USER)", lambda e: e.environ.get("REMOTE_USER")),
    "t": ("date and time, [10/Oct/2026:13:55:36 +0000]", lambda e: f"[{e.timestamp()}]"),
    "r": ("request line", lambda e: _quoted(request_line(e.environ))),
    "m": ("request method", lambda e: e.environ.get("REQUEST_METHOD")),
    "U": ("URL path, without the query", lambda e: _quoted(_path(e.environ))),
    "q": ("query string", lambda e: _quoted(_query(e.environ))),
    "H": ("protocol", lambda e: e.environ.get("SERVER_PROTOCOL")),
    "s": ("status (0: response cut off)", lambda e: e.status),
    "b": ("response body bytes ('-' for none)", lambda e: e.body_bytes or "-"),
    "B": ("response body bytes", lambda e: str(e.body_bytes)),
    "f": ("referer", lambda e: _quoted(e.environ.get("HTTP_REFERER"))),
    "a": ("user agent", lambda e: _quoted(e.environ.get("HTTP_USER_AGENT"))),
    "T": ("request time, whole seconds", lambda e: str(int(e.duration))),
    "D": ("request time, microseconds", lambda e: str(int(e.duration * 1_000_000))),
    "M": ("request time, milliseconds", lambda e: f"{e.duration * 1000:.3f}"),
    "L": ("request time, seconds", lambda e: f"{e.duration:.6f}"),
    "Q": ("queue time (waited in the worker), milliseconds", lambda e: f"{e.queue * 1000:.3f}"),
    "p": ("process id, <1234>", lambda e: f"<{os.getpid()}>"),
}
_ATOM_RE = re.compile(r"%\(([^)]*)\)")
_HEADER_ATOM_RE = re.compile(r"\{([^}]+)\}([ie])\Z")


class _Atoms:
    """The mapping ``--access-log-format`` is %-formatted with: each atom computed on use."""

    __slots__ = ("entry",)

    def __init__(self, entry: _Entry) -> None:
        self.entry = entry

    def __getitem__(self, atom: str) -> str:
        known = ACCESS_ATOMS.get(atom)
        if known is not None:
            value = known[1](self.entry)
        else:  # {name}i or {KEY}e: checked by access_log_format
            match = _HEADER_ATOM_RE.match(atom)
            assert match is not None, atom
            name, kind = match.groups()
            if kind == "i":
                name = "HTTP_" + name.upper().replace("-", "_")
            value = _quoted(self.entry.environ.get(name))
        return str(value) if value not in (None, "") else "-"


def access_log_format(fmt: str) -> str:
    """Check a ``--access-log-format`` string: every ``%(ATOM)s`` is known and it formats.

    Raises:
        ValueError: an unknown atom or a bad ``%`` conversion (the message says which).
    """
    for atom in _ATOM_RE.findall(fmt):
        if atom not in ACCESS_ATOMS and not _HEADER_ATOM_RE.match(atom):
            known = " ".join(ACCESS_ATOMS)
            raise ValueError(f"unknown atom %({atom})s: known are {known}, {{Header}}i, {{KEY}}e")
    sample = _Entry({}, 200, 1, 0.0, 0.0, lambda: "")
    try:
        fmt % _Atoms(sample)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{fmt!r} is not a format of %(ATOM)s atoms ({exc})") from exc
    return fmt


class AccessLog:
    """Writes access log lines to a text stream: the default line, a ``line_format`` of
    ``ACCESS_ATOMS``, or (``as_json``) one JSON object per line."""

    def __init__(
        self,
        stream: IO[str],
        owned: bool = False,
        line_format: str | None = None,
        as_json: bool = False,
    ) -> None:
        self.stream = stream
        self._owned = owned
        self._second = -1
        self._stamp = ""
        self.line_format = line_format
        self.as_json = as_json

    @classmethod
    def open(
        cls, spec: str | None, line_format: str | None = None, log_format: str = "text"
    ) -> AccessLog | None:
        """``-`` logs to stderr, a path appends to that file (line-buffered), None logs nothing.
        ``line_format`` is a ``--access-log-format``; ``log_format`` "json" writes JSON.

        Raises:
            ConfigError: the file cannot be opened.
        """
        if spec is None:
            return None
        as_json = log_format == "json"
        if spec == STDERR:
            return cls(sys.stderr, line_format=line_format, as_json=as_json)
        try:
            stream = open(spec, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (owned)
        except OSError as exc:
            raise ConfigError(f"cannot open access log {spec}: {exc.strerror}") from exc
        return cls(stream, owned=True, line_format=line_format, as_json=as_json)

    def log(
        self,
        environ: Environ,
        status: int | None,
        body_bytes: int,
        duration: float,
        queue: float = 0.0,
    ) -> None:
        """Write one line; ``status`` None means the response was cut off (logged as 0);
        ``queue`` is the seconds the request waited before it ran."""
        if self.as_json:
            line = self._json_line(environ, status, body_bytes, duration, queue)
        elif self.line_format is not None:
            entry = _Entry(environ, status, body_bytes, duration, queue, self._timestamp)
            line = self.line_format % _Atoms(entry) + "\n"
        else:
            line = (
                f"{environ.get('REMOTE_ADDR') or '-'} - - [{self._timestamp()}] "
                f'"{_quoted(request_line(environ))}" {status or 0} {body_bytes} '
                f'"{_quoted(environ.get("HTTP_REFERER"))}" '
                f'"{_quoted(environ.get("HTTP_USER_AGENT"))}" {duration * 1000:.3f}ms\n'
            )
        try:
            self.stream.write(line)
        except (
            OSError,
            ValueError,
        ) as exc:  # a full disk or closed stream loses lines, not requests
            logging.getLogger("m2bridge.access").debug("access log write failed: %s", exc)

    def close(self) -> None:
        """Close the file (never stderr)."""
        if self._owned:
            self.stream.close()

    def reopen(self) -> None:
        """Open the file again at its path (SIGUSR1, after logrotate renamed it); stderr is
        left as is. When the path cannot be opened the old file keeps getting the lines."""
        if not self._owned:
            return
        path = self.stream.name
        try:
            stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (owned)
        except OSError as exc:
            logging.getLogger("m2bridge.access").warning(
                "cannot reopen access log %s: %s", path, exc.strerror
            )
            return
        old, self.stream = self.stream, stream
        old.close()

    @staticmethod
    def _json_line(
        environ: Environ, status: int | None, body_bytes: int, duration: float, queue: float
    ) -> str:
        entry = {
            "time": iso_time(time.time()),
            "remote": environ.get("REMOTE_ADDR") or None,
            "method": environ.get("REQUEST_METHOD"),
            "path": _path(environ),
            "query": _query(environ),
            "protocol": environ.get("SERVER_PROTOCOL"),
            "status": status or 0,
            "bytes": body_bytes,
            "duration_ms": round(duration * 1000, 3),
            "queue_ms": round(queue * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "referer": environ.get("HTTP_REFERER"),
        }
        return json.dumps(entry, ensure_ascii=False) + "\n"

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
        return self._stamp


def reopen_log_files(access_log: AccessLog | None) -> None:
    """A worker's SIGUSR1 (as gunicorn's): reopen its access log file. The error log goes to
    stderr, which has no path to reopen (the supervisor reopens its own ``--log-file``)."""
    logging.getLogger("m2bridge.worker").info("got USR1: reopening log files")
    if access_log is not None:
        access_log.reopen()
