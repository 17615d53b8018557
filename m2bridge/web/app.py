"""The console's WSGI application: the page, its static files, the JSON API and the event
stream, behind the console token and the CSRF rules.

```
GET  /                the page (``/?token=T`` sets the cookie, then 303 to ``/``)
GET  /static/NAME     a file of the static directory
GET  /api/state       the latest snapshot and figures (JSON)
GET  /events          Server-Sent Events: ``history``, then an ``update`` per interval
POST /api/command     {"command": "incr", "name": "hello"} with the X-M2bridge-CSRF header
```
With a console token every route needs it (``Authorization: Bearer T`` or the
``m2bridge_console`` cookie); without one the console is open to the loopback names only
(a Host header naming anything else is refused, against DNS rebinding). The data comes from a
``Source`` (the collector of server.py; a fake in tests): no socket is opened here.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from m2bridge.errors import ControlError, M2BridgeError
from m2bridge.supervisor.control import Errno

if TYPE_CHECKING:
    from m2bridge._types import Environ, StartResponse

log = logging.getLogger("m2bridge.web")

COOKIE = "m2bridge_console"
CSRF_HEADER = "X-M2bridge-CSRF"
#: The commands the page may send (never ``quit`` or ``signal``).
COMMANDS = ("incr", "decr", "reload", "restart", "stop", "start")
MAX_BODY = 4096
MAX_NAME = 200
STATIC_DIR = Path(__file__).parent / "static"
PAGE = "console.html"
#: Host names (without port) an open console (no token) answers to.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'",
    ),
]
STATUS_TEXT = {
    200: "200 OK",
    303: "303 See Other",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    502: "502 Bad Gateway",
}

#: An event of the stream: (name, JSON-able data); None asks for a heartbeat.
Event = tuple[str, dict[str, Any]]


class Source(Protocol):
    """Where the console's data and commands go (the collector, or a fake)."""

    def state(self) -> dict[str, Any]: ...

    def subscribe(self) -> Iterator[Event | None]: ...

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ConsoleConfig:
    """Attributes:
    csrf: the per-process value the page sends back in ``X-M2bridge-CSRF``.
    token: the console token (None: open, to the loopback host names only).
    hosts: host names (no port) an open console also answers to, e.g. its bind address.
    static_dir: where the page and its files are.
    """

    csrf: str
    token: str | None = None
    hosts: frozenset[str] = field(default_factory=frozenset)
    static_dir: Path = STATIC_DIR


class Refusal(M2BridgeError):
    """A request the console answers with an error ``status`` (JSON ``{"ok": false}``)."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def json_response(status: int, data: dict[str, Any]) -> Response:
    body = json.dumps(data).encode()
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    return Response(status, [*headers, ("Content-Length", str(len(body)))], [body])


def encode_event(event: Event | None) -> bytes:
    """One Server-Sent Event (the data JSON on one line), or a comment line as heartbeat."""
    if event is None:
        return b": keep-alive\n\n"
    name, data = event
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ConsoleApp:
    """The WSGI application."""

    def __init__(self, source: Source, config: ConsoleConfig) -> None:
        self.source = source
        self.config = config
        self._files: dict[str, bytes] = {}
        self._routes: dict[str, dict[str, Callable[[Environ], Response]]] = {
            "/": {"GET": self._page},
            "/api/state": {"GET": self._state},
            "/events": {"GET": self._events},
            "/api/command": {"POST": self._command},
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self._respond(environ)
        except Refusal as exc:
            response = json_response(exc.status, {"ok": False, "error": str(exc)})
            response.headers += exc.headers
        start_response(STATUS_TEXT[response.status], response.headers + SECURITY_HEADERS)
        return response.body

    def _respond(self, environ: Environ) -> Response:
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        self._check_host(environ)
        if path == "/" and method == "GET" and self.config.token is not None:
            given = parse_qs(environ.get("QUERY_STRING", "")).get("token")
            if given:
                return self._login(environ, given[0])
        if not self._authorized(environ):
            log.warning("401 %s %s from %s: no valid console token", method, path, _peer(environ))
            raise Refusal(401, "console token required", [("WWW-Authenticate", "Bearer")])
        if path.startswith("/static/"):
            handlers: dict[str, Callable[[Environ], Response]] = {"GET": self._static}
        elif path in self._routes:
            handlers = self._routes[path]
        else:
            raise Refusal(404, f"no such page: {path[:100]}")
        if method not in handlers:
            raise Refusal(405, f"{method[:20]} not allowed here", [("Allow", ", ".join(handlers))])
        return handlers[method](environ)

    # -- access --

    def _check_host(self, environ: Environ) -> None:
        """An open console answers to its own names only: a page of another site whose name
        was rebound to this address must not get in."""
        if self.config.token is not None:
            return
        host = _hostname(environ.get("HTTP_HOST", ""))
        if host not in LOOPBACK_NAMES and host not in self.config.hosts:
            log.warning("403 from %s: unexpected Host %.100r", _peer(environ), host)
            raise Refusal(403, "unexpected Host header")

    def _authorized(self, environ: Environ) -> bool:
        token = self.config.token
        if token is None:
            return True
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and _same(credentials.strip(), token):
            return True
        return _same(_cookie(environ), token)

    def _login(self, environ: Environ, given: str) -> Response:
        """``/?token=T``: keep the token in a cookie and take it out of the URL."""
        token = self.config.token or ""
        if not _same(given, token):
            log.warning("401 GET /?token= from %s: wrong console token", _peer(environ))
            raise Refusal(401, "wrong console token")
        cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        headers = [("Location", "/"), ("Set-Cookie", cookie), ("Content-Length", "0")]
        return Response(303, [*headers, ("Cache-Control", "no-store")], [])

    def _check_csrf(self, environ: Environ) -> None:
        """A command must carry the page's CSRF value (a cross-site form cannot set a header)
        and, when the browser names the page's origin, come from this console's own."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and urlsplit(origin).netloc.lower() != _host(environ):
            self._forbid(environ, f"Origin {origin[:100]!r} is not this console")
        if not _same(environ.get("HTTP_X_M2BRIDGE_CSRF", ""), self.config.csrf):
            self._forbid(environ, f"missing or wrong {CSRF_HEADER} header")

    @staticmethod
    def _forbid(environ: Environ, reason: str) -> None:
        log.warning("403 POST /api/command from %s: %s", _peer(environ), reason)
        raise Refusal(403, reason)

    # -- routes --

    def _page(self, environ: Environ) -> Response:
        html = self._file(PAGE).decode().replace("{{csrf}}", self.config.csrf)
        body = html.encode()
        headers = [("Content-Type", CONTENT_TYPES[".html"]), ("Cache-Control", "no-store")]
        return Response(200, [*headers, ("Content-Length", str(len(body)))], [body])

    def _static(self, environ: Environ) -> Response:
        name = environ.get("PATH_INFO", "").removeprefix("/static/")
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name) or name == PAGE:
            raise Refusal(404, "no such file")
        body = self._file(name)
        content_type = CONTENT_TYPES.get(Path(name).suffix, "text/plain; charset=utf-8")
        headers = [("Content-Type", content_type), ("Cache-Control", "no-cache")]
        return Response(200, [*headers, ("Content-Length", str(len(body)))], [body])

    def _file(self, name: str) -> bytes:
        """A file of the static directory, read once."""
        if name not in self._files:
            path = self.config.static_dir / name
            if not path.is_file():
                raise Refusal(404, "no such file")
            self._files[name] = path.read_bytes()
        return self._files[name]

    def _state(self, environ: Environ) -> Response:
        return json_response(200, {**self.source.state(), "csrf": self.config.csrf})

    def _events(self, environ: Environ) -> Response:
        headers = [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
        ]
        return Response(200, headers, _stream(self.source.subscribe()))

    def _command(self, environ: Environ) -> Response:
        self._check_csrf(environ)
        command, name = parse_command(read_body(environ))
        try:
            data = self.source.command(command, {"name": name})
        except ControlError as exc:
            log.warning("command %s %s from %s: %s", command, name, _peer(environ), exc)
            status = 502 if exc.errno == Errno.UNREACHABLE else 409
            return json_response(status, {"ok": False, "error": str(exc), "errno": exc.errno})
        log.info("command %s %s from %s: ok", command, name, _peer(environ))
        return json_response(200, {"ok": True, "data": data})


def read_body(environ: Environ) -> bytes:
    """The JSON body of a command, at most ``MAX_BODY`` bytes.

    Raises:
        Refusal: not JSON (415), no length (411), too long (413).
    """
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type != "application/json":
        raise Refusal(415, "Content-Type must be application/json")
    raw = environ.get("CONTENT_LENGTH") or ""
    if not raw.isdigit():
        raise Refusal(411, "a Content-Length is required")
    if int(raw) > MAX_BODY:
        raise Refusal(413, f"body larger than {MAX_BODY} bytes")
    body: bytes = environ["wsgi.input"].read(int(raw))
    return body


def parse_command(body: bytes) -> tuple[str, str]:
    """``(command, watcher name)`` from ``{"command": ..., "name": ...}``.

    Raises:
        Refusal: 400, with what is wrong.
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise Refusal(400, "body is not JSON") from None
    if not isinstance(message, dict):
        raise Refusal(400, "body is not a JSON object")
    command, name = message.get("command"), message.get("name")
    if command not in COMMANDS:
        raise Refusal(400, f"command must be one of {', '.join(COMMANDS)}")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise Refusal(400, "name (a watcher name) is required")
    return str(command), name


def _stream(events: Iterator[Event | None]) -> Iterator[bytes]:
    """The event stream's chunks; closing it (the client left) closes ``events``."""
    try:
        yield b"retry: 2000\n\n"
        for event in events:
            yield encode_event(event)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings (False for an empty ``given``)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _cookie(environ: Environ) -> str:
    """The console cookie's value ("" without one)."""
    for pair in str(environ.get("HTTP_COOKIE", "")).split(";"):
        name, _, value = pair.strip().partition("=")
        if name == COOKIE:
            return value
    return ""


def _host(environ: Environ) -> str:
    """The Host the request names, lowercase, with its port."""
    return str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")).lower()


def _hostname(host: str) -> str:
    """``127.0.0.1`` of ``127.0.0.1:9180``, ``[::1]`` of ``[::1]:9180``."""
    host = host.lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def _peer(environ: Environ) -> str:
    return str(environ.get("REMOTE_ADDR", "?"))
