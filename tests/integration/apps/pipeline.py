"""Four answers that tell pipelined requests apart (httpbin's names): ``/delay/N`` (sleeps N
seconds, at most 5, cooperatively), ``/get``, ``/status/N`` (no body), ``/bytes/N`` (N bytes,
at most 1 MiB). Each answer names its path, so a test sees which request it answers."""

from __future__ import annotations

from collections.abc import Iterable

import gevent

from m2bridge._types import Environ, StartResponse

MAX_DELAY = 5.0
MAX_BYTES = 1 << 20


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch on the path: ``/delay/N``, ``/get``, ``/status/N``, ``/bytes/N``; else 404."""
    path = environ.get("PATH_INFO", "")
    name, _, arg = path.strip("/").partition("/")
    status, body = "404 Not Found", b"no such route\n"
    if name == "delay":
        gevent.sleep(min(float(arg or 0), MAX_DELAY))
        status, body = "200 OK", f"delayed {arg}\n".encode()
    elif name == "get" and not arg:
        status, body = "200 OK", b"get\n"
    elif name == "status" and arg.isdigit():
        status, body = f"{arg} Status", b""
    elif name == "bytes" and arg.isdigit():
        status, body = "200 OK", bytes(i % 251 for i in range(min(int(arg), MAX_BYTES)))
    headers = [("Content-Type", "application/octet-stream"), ("X-Path", path)]
    if not status.startswith(("204", "304")):
        headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]
