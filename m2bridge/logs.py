"""Logging for worker processes: the process-wide setup and the per-request access log.

The access log is one line per request in an Apache-combined-like format, with the duration
appended::

    127.0.0.1 - - [23/Nov/2026:06:16:42 +0000] "GET /a?b=1 HTTP/1.1" 200 13 "-" "curl/8" 1.234ms

It is written only when ``--access-log`` is given, so a worker without it does no per-request
formatting at all. Both the ZeroMQ worker and the fd-path worker use this module.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, TYPE_CHECKING

from m2bridge.errors import ConfigError

if TYPE_CHECKING:
    from m2bridge._types import Environ

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
STDERR = "-"


def setup_logging(level: str) -> None:
    """Send the ``m2bridge`` loggers (and the root logger) to stderr at ``level``.

    Raises:
        ConfigError: ``level`` is not one of ``LOG_LEVELS``.
    """
    if level.lower() not in LOG_LEVELS:
        raise ConfigError(f"unknown log level {level!r}: choose from {', '.join(LOG_LEVELS)}")
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)


def request_line(environ: Environ) -> str:
    """The request line as the client sent it (``METHOD URI VERSION``), from the environ."""
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not uri:
        uri = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        if query:
            uri = f"{uri}?{query}"
    return f"{environ.get('REQUEST_METHOD', '-')} {uri} {environ.get('SERVER_PROTOCOL', '-')}"


def _quoted(value: object) -> str:
    """A header value safe inside the double quotes of one log line."""
    if not value:
        return "-"
    text = str(value)
    if '"' in text or "\\" in text or not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return text


class AccessLog:
    """Writes access log lines to a text stream."""

    def __init__(self, stream: IO[str], owned: bool = False) -> None:
        self.stream = stream
        self._owned = owned
        self._second = -1
        self._stamp = ""

    @classmethod
    def open(cls, spec: str | None) -> AccessLog | None:
        """``-`` logs to stderr, a path appends to that file (line-buffered), None logs nothing.

        Raises:
            ConfigError: the file cannot be opened.
        """
        if spec is None:
            return None
        if spec == STDERR:
            return cls(sys.stderr)
        try:
            stream = open(spec, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (owned)
        except OSError as exc:
            raise ConfigError(f"cannot open access log {spec}: {exc.strerror}") from exc
        return cls(stream, owned=True)

    def log(self, environ: Environ, status: int | None, body_bytes: int, duration: float) -> None:
        """Write one line; ``status`` None means the response was cut off (logged as 0)."""
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
