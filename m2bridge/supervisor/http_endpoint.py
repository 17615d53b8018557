"""The supervisor's HTTP endpoint (``/metrics``, ``/healthz``), served inside its one-thread loop.

The supervisor runs no thread (it spawns children with a ``preexec_fn``), so this is not a
server of its own: a non-blocking listening socket and its connections are more fds for the
loop's poll, HTTP/1.1 is parsed by ``h11`` (sans-IO), each request gets one answer and the
connection is closed once that is sent. Nothing here blocks: a reply the peer does not read is
kept and sent as the socket allows; a connection that sends no complete request within
``IDLE_TIMEOUT`` s, or more than ``MAX_CONNECTIONS`` at once, is closed.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import h11

from m2bridge.errors import ConfigError

log = logging.getLogger("m2bridge.supervisor")

#: Largest request head accepted (bytes); a request body is read and ignored.
MAX_HEAD = 16384
MAX_CONNECTIONS = 32
IDLE_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


#: A route: called on each GET of its path, returns what to send.
Route = Callable[[], Reply]


class _Client:
    """One accepted connection: its h11 state, what is left to send, and since when."""

    def __init__(self, sock: socket.socket, opened: float) -> None:
        self.sock = sock
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.opened = opened
        self.request: h11.Request | None = None
        self.pending = b""
        self.answered = False


class HttpEndpoint:
    """Answers GETs of ``routes`` on ``address`` (HOST:PORT); the loop polls ``fds()``."""

    def __init__(self, address: str, routes: Mapping[str, Route], token: str | None = None) -> None:
        self.address = address
        self.routes = dict(routes)
        self.token = token.encode() if token else None
        self.listener = _listen(address)
        self.port = self.listener.getsockname()[1]
        self.served = 0
        self._clients: dict[int, _Client] = {}
        host = address.rpartition(":")[0].strip("[]")
        if host not in LOOPBACK and self.token is None:
            log.warning("metrics: %s is reachable from other hosts and needs no token", address)

    def fds(self) -> list[int]:
        """The fds to poll for reading: the listener and every connection."""
        return [self.listener.fileno(), *self._clients]

    def writable(self) -> list[int]:
        """The connections with a reply waiting for room in their socket."""
        return [fd for fd, client in self._clients.items() if client.pending]

    def handle(self, fd: int, now: float) -> None:
        """``fd`` (one of ``fds()`` or ``writable()``) is ready: accept, read or send."""
        if fd == self.listener.fileno():
            self._accept(now)
            return
        client = self._clients.get(fd)
        if client is None:
            return
        if client.pending:
            self._flush(fd, client)
        else:
            self._read(fd, client)

    def expire(self, now: float) -> None:
        """Close the connections open longer than ``IDLE_TIMEOUT``."""
        for fd, client in list(self._clients.items()):
            if now - client.opened > IDLE_TIMEOUT:
                log.debug("metrics: closing a connection idle for %g s", IDLE_TIMEOUT)
                self._close(fd)

    def close(self) -> None:
        for fd in list(self._clients):
            self._close(fd)
        self.listener.close()

    # -- connections --

    def _accept(self, now: float) -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                sock, _peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: keep the loop alive, try again next turn
                log.warning("metrics: accept failed: %s", exc)
                return
            if len(self._clients) >= MAX_CONNECTIONS:
                log.warning("metrics: %d connections open already: refused one", MAX_CONNECTIONS)
                sock.close()
                continue
            sock.setblocking(False)
            self._clients[sock.fileno()] = _Client(sock, now)

    def _read(self, fd: int, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(fd)
            return
        if not data:
            self._close(fd)
            return
        try:
            client.http.receive_data(data)
            self._advance(client)
        except h11.RemoteProtocolError as exc:
            log.info("metrics: bad request: %s", exc)
            client.pending = _raw_error(exc.error_status_hint, str(exc))
            client.answered = True
        self._flush(fd, client)

    def _advance(self, client: _Client) -> None:
        while not client.answered:
            event = client.http.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                client.request = event
            elif isinstance(event, h11.EndOfMessage) and client.request is not None:
                reply = self._answer(client.request)
                client.pending = _render(client.http, reply)
                client.answered = True
            elif isinstance(event, h11.ConnectionClosed):
                return

    def _answer(self, request: h11.Request) -> Reply:
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").partition("?")[0]
        if self.token is not None and not self._authorized(request):
            log.warning("metrics: refused %s %s: missing or wrong token", method, path)
            return Reply(401, "text/plain; charset=utf-8", b"missing or wrong token\n")
        route = self.routes.get(path)
        if route is None:
            return Reply(404, "text/plain; charset=utf-8", f"no such path: {path}\n".encode())
        if method not in ("GET", "HEAD"):
            return Reply(405, "text/plain; charset=utf-8", b"only GET\n")
        try:
            reply = route()
        except Exception:  # a bug in a route must not take the supervisor down
            log.exception("metrics: %s failed", path)
            return Reply(500, "text/plain; charset=utf-8", b"internal error\n")
        self.served += 1
        return Reply(reply.status, reply.content_type, b"" if method == "HEAD" else reply.body)

    def _authorized(self, request: h11.Request) -> bool:
        assert self.token is not None
        for name, value in request.headers:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False

    def _flush(self, fd: int, client: _Client) -> None:
        try:
            sent = client.sock.send(client.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(fd)
            return
        client.pending = client.pending[sent:]
        if not client.pending and client.answered:
            self._close(fd)

    def _close(self, fd: int) -> None:
        client = self._clients.pop(fd, None)
        if client is not None:
            with contextlib.suppress(OSError):
                client.sock.close()


def _render(http: h11.Connection, reply: Reply) -> bytes:
    headers = [
        ("content-type", reply.content_type),
        ("content-length", str(len(reply.body))),
        ("cache-control", "no-store"),
        ("connection", "close"),
    ]
    head = http.send(h11.Response(status_code=reply.status, headers=headers)) or b""
    return (
        head
        + (http.send(h11.Data(data=reply.body)) or b"")
        + (http.send(h11.EndOfMessage()) or b"")
    )


def _raw_error(status: int, reason: str) -> bytes:
    """An answer for a request h11 could not parse (its state machine is then unusable)."""
    body = f"bad request: {reason}\n".encode("utf-8", "replace")
    return (
        f"HTTP/1.1 {status} Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def _listen(address: str) -> socket.socket:
    """A non-blocking listening socket on ``address`` (HOST:PORT; port 0 picks a free one).

    Raises:
        ConfigError: the address does not resolve or cannot be bound.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        family, kind, proto, _name, sockaddr = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"metrics: cannot listen on {address}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.set_inheritable(False)
        sock.bind(sockaddr)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise ConfigError(f"metrics: cannot listen on {address}: {reason}") from exc
    return sock
