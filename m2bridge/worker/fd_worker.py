"""The fd-path worker: gevent's HTTP/1.1 WSGI server on a listening socket (Circus + Chaussette).

``m2bridge serve MODULE:APP --fd N`` serves on a listening socket inherited from the supervisor;
``--bind HOST:PORT`` binds its own (development). It shares the app loader, the logging, the
graceful drain and the counters file with the ZeroMQ worker. Two traps are handled here: the
socket rebuilt from an inherited fd is made non-blocking, and every accepted TCP connection gets
TCP_NODELAY (pywsgi writes the header block and the body separately; with Nagle and delayed ACKs
each keep-alive response then waits ~40 ms).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import gevent
from gevent import monkey
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import LoggingLogAdapter, WSGIHandler, WSGIServer

from m2bridge.config import request_limit
from m2bridge.errors import AppImportError, ConfigError
from m2bridge.loader import load_app
from m2bridge.logs import AccessLog, reopen_log_files, setup_logging
from m2bridge.worker.stats import WorkerStats, publish_forever, stats_file_for, stop_publishing

if TYPE_CHECKING:
    from m2bridge._types import WSGIApp
    from m2bridge.config import WorkerConfig

log = logging.getLogger("m2bridge.worker.fd_worker")

LISTEN_BACKLOG = 1024


class _RequestTimeout(Exception):
    """Raised inside a request greenlet that ran past ``--timeout``."""


def parse_bind(spec: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6; an empty host means all interfaces).

    Raises:
        ConfigError: no port, a port that is not a number in 0..65535, or bad brackets.
    """
    host, sep, port_text = spec.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--bind {spec!r}: expected HOST:PORT with a port in 0..65535")
    if host.startswith("[") != host.endswith("]"):
        raise ConfigError(f"--bind {spec!r}: unbalanced brackets around the IPv6 host")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def open_listener(config: WorkerConfig) -> socket.socket:
    """The non-blocking listening socket to serve on: the inherited ``fd`` or a new ``bind``.

    Raises:
        ConfigError: neither is set, the fd is not a listening stream socket, or bind fails.
    """
    if config.fd is not None:
        return inherit_listener(config.fd)
    if config.bind:
        return bind_listener(config.bind)
    raise ConfigError("the fd path needs --fd N or --bind HOST:PORT")


def inherit_listener(fd: int) -> socket.socket:
    """Rebuild the listening socket the supervisor passed as ``fd``; set it non-blocking."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"--fd {fd}: not an open socket ({exc.strerror})") from exc
    problem = None
    if sock.type != socket.SOCK_STREAM:
        problem = f"is a {sock.type.name} socket, expected SOCK_STREAM"
    elif not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        problem = "is a socket that is not listening (the supervisor must call listen())"
    if problem:
        sock.detach()  # not ours to close: leave the fd as we found it
        raise ConfigError(f"--fd {fd}: {problem}")
    sock.setblocking(False)
    return sock


def bind_listener(spec: str) -> socket.socket:
    """Bind and listen on ``HOST:PORT`` with SO_REUSEADDR (the development path)."""
    host, port = parse_bind(spec)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--bind {spec}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


@dataclass
class WorkerState:
    """The counters, the idle connections and the stop switch of one fd-path worker."""

    limit: int = 0
    stats: WorkerStats = field(default_factory=WorkerStats)
    draining: bool = False
    idle: set[FdHandler] = field(default_factory=set)
    stop: Event = field(default_factory=Event)

    def note_served(self, status: int | None) -> None:
        """Count one finished request (``status`` None: cut off); drain at ``limit``."""
        stats = self.stats
        stats.served += 1
        if status is None or status >= 500:
            stats.errors += 1
        if self.limit and stats.served >= self.limit and not self.stop.is_set():
            log.info("served %d requests (max_requests): draining to be replaced", stats.served)
            self.stop.set()


class FdHandler(WSGIHandler):
    """pywsgi's connection handler plus TCP_NODELAY, counters, drain, timeout and error logging."""

    server: FdServer
    requests_on_connection = 0
    body_bytes = 0

    def __init__(self, sock: Any, address: Any, server: FdServer) -> None:
        super().__init__(sock, address, server)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_requestline(self) -> str:
        state = self.server.state
        if state.draining and self.requests_on_connection:
            return ""  # end of keep-alive: the worker is draining
        state.idle.add(self)
        try:
            return super().read_requestline()
        finally:
            state.idle.discard(self)

    def handle_one_request(self) -> tuple[str, bytes] | Literal[True] | None:
        self.environ = None  # nothing of the previous request may reach its log line
        self.code = None
        self.body_bytes = 0
        return super().handle_one_request()

    def handle_one_response(self) -> None:
        state = self.server.state
        stats = state.stats
        stats.in_flight += 1
        stats.queue_time.observe(0.0)  # parsed and run at once: no queue on the fd path
        self.requests_on_connection += 1
        started = time.monotonic()
        try:
            super().handle_one_response()
        finally:
            stats.app_time.observe(time.monotonic() - started)
            stats.in_flight -= 1
            if state.draining:
                self.close_connection = True
            state.note_served(self.status_code())

    def status_code(self) -> int | None:
        """The status sent for this request; None when the response was cut off."""
        if self.code is None and isinstance(self.status, str) and self.status.isdigit():
            return int(self.status)  # pywsgi's canned 400/414 answers set only ``status``
        return self.code if self.code is not None and self.code > 0 else None

    def write(self, data: bytes) -> None:
        super().write(data)
        self.body_bytes += len(data)

    def remote_addr(self) -> str:
        """The client's address ("-" on a unix socket)."""
        address: object = self.client_address
        return str(address[0]) if isinstance(address, tuple) else "-"

    def unparsed_environ(self) -> dict[str, str]:
        """What the access log needs of a request pywsgi refused before building an environ."""
        method, uri, protocol = [*(self.requestline or "").split(None, 2), "-", "-", "-"][:3]
        return {
            "REMOTE_ADDR": self.remote_addr(),
            "REQUEST_METHOD": method,
            "REQUEST_URI": uri,
            "SERVER_PROTOCOL": protocol.strip(),
        }

    def log_request(self) -> None:
        access_log = self.server.access_log
        if access_log is None:
            return
        environ = self.environ or self.unparsed_environ()
        duration = (self.time_finish or time.time()) - self.time_start
        access_log.log(environ, self.status_code(), self.body_bytes, duration)

    def run_application(self) -> None:
        timeout = self.server.request_timeout
        if timeout <= 0:
            super().run_application()
            return
        with gevent.Timeout(timeout, _RequestTimeout):
            super().run_application()

    def finalize_headers(self) -> None:
        super().finalize_headers()
        if self.server.state.draining:
            self.close_connection = True
            headers = cast("list[tuple[bytes, bytes]]", self.response_headers)
            headers[:] = [(k, v) for k, v in headers if k.lower() != b"connection"]
            headers.append((b"Connection", b"close"))

    def handle_error(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        line = self.requestline
        if isinstance(v, _RequestTimeout):
            log.warning("%r ran past --timeout %ss; cancelled", line, self.server.request_timeout)
            code = 504
        elif isinstance(v, gevent.GreenletExit):
            log.warning("%r cut off: the graceful timeout ran out", line)
            code = 503
        else:
            log.error("%r: the application raised", line, exc_info=(t, v, tb))  # type: ignore[arg-type]
            code = 500
        self.send_error_response(code, close=code != 500)  # as the ZeroMQ worker

    def send_error_response(self, code: int, close: bool) -> None:
        """Answer ``code`` if no byte of the response left yet, else close the connection."""
        if self.headers_sent or self.response_length:
            self.close_connection = True
            return
        status = f"{code} {HTTPStatus(code).phrase}"
        body = status.encode("latin-1")
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
        try:
            self.start_response(status, headers)
            self.write(body)
        except OSError:
            self.close_connection = True


class FdServer(WSGIServer):
    """pywsgi's server carrying the worker state; one per worker process."""

    handler_class = FdHandler

    def __init__(self, listener: socket.socket, app: WSGIApp, config: WorkerConfig) -> None:
        self.state = WorkerState(
            limit=request_limit(config.max_requests, config.max_requests_jitter)
        )
        self.request_timeout = config.timeout
        self.access_log = AccessLog.open(
            config.access_log, config.access_log_format, config.log_format
        )
        environ: dict[str, Any] = {
            "wsgi.multiprocess": config.fd is not None,  # also: accept 1 connection per wake-up
            "wsgi.errors": sys.stderr,  # as the ZeroMQ worker
        }
        address = listener.getsockname()
        if isinstance(address, tuple):
            environ["SERVER_NAME"] = address[0]  # no reverse DNS lookup at start-up
        super().__init__(
            listener,
            app,
            spawn=Pool(config.concurrency),
            log=None,  # the access log is written by FdHandler.log_request
            error_log=LoggingLogAdapter(
                logging.getLogger("m2bridge.worker.fd_worker.wsgi"), logging.WARNING
            ),
            environ=environ,
        )

    def drain(self, graceful_timeout: float) -> None:
        """Stop accepting, end idle keep-alive connections, wait for requests in flight."""
        self.state.draining = True
        for handler in list(self.state.idle):
            with contextlib.suppress(OSError):
                handler.socket.shutdown(socket.SHUT_RDWR)
        self.stop(timeout=graceful_timeout)


def main(config: WorkerConfig) -> int:
    """Serve ``config.app`` over HTTP on ``config.fd`` or ``config.bind`` until told to stop.

    Returns:
        0 after a graceful drain (signal or max_requests), 1 when the app, the socket or an
        option is unusable (the reason is logged).
    """
    monkey.patch_all()
    try:
        setup_logging(config.log_level, config.log_format)
        app = load_app(config.app)
        server = FdServer(open_listener(config), app, config)
    except (AppImportError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return serve(server, config)


def serve(server: FdServer, config: WorkerConfig) -> int:
    """Run ``server`` until SIGTERM/SIGINT or max_requests, then drain and return 0; SIGUSR1
    reopens the access log file."""
    state = server.state
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, state.stop.set)
    gevent.signal_handler(signal.SIGUSR1, reopen_log_files, server.access_log)
    stats_file = stats_file_for(config.stats_file, state.stats)
    publisher = gevent.spawn(publish_forever, stats_file, gevent.sleep) if stats_file else None
    server.start()
    log.info("serving %s on %s (pid %d)", config.app, server.address, os.getpid())
    state.stop.wait()
    log.info("draining: %d request(s) in flight", state.stats.in_flight)
    server.drain(config.graceful_timeout)
    stop_publishing(publisher, stats_file)
    if server.access_log is not None:
        server.access_log.close()
    log.info("stopped after %d request(s)", state.stats.served)
    return 0
