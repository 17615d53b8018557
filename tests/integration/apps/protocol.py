"""Apps for the protocol integration tests (disconnect, flow control, streamed uploads).

- ``/cancellable?marker=PATH``: waits for ``m2bridge.disconnected``, appends ``disconnected``
  to PATH, then keeps working until cancelled (``cancelled`` is appended when the greenlet is
  killed), or answers ``not disconnected`` after 20 s;
- ``/stream?mb=N``: streams N MiB (at most 200) in 64 KiB pieces without Content-Length;
- ``/read``: reads ``wsgi.input`` in 8 KiB reads and answers its size and sha256, plus how many
  bytes had been read when the first read returned (a streamed body starts before it is all in);
- ``/hello``: a tiny response naming the worker's sender (to tell the servers apart).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs

import gevent

from m2bridge._types import Environ, StartResponse

PIECE = b"\xa5" * 65536
MAX_MB = 200


def _query(environ: Environ, name: str, default: str) -> str:
    return str(parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0])


def _text(start_response: StartResponse, body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def cancellable(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    marker = _query(environ, "marker", "")
    if not environ["m2bridge.disconnected"].wait(20):
        return _text(start_response, b"not disconnected\n")
    with open(marker, "a", encoding="utf-8") as out:
        out.write("disconnected\n")
    try:
        gevent.sleep(20)  # work that only the cancellation stops
    except gevent.GreenletExit:
        with open(marker, "a", encoding="utf-8") as out:
            out.write("cancelled\n")
        raise
    return _text(start_response, b"finished\n")


def stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    pieces = min(int(_query(environ, "mb", "1")), MAX_MB) * 16
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(pieces):
        yield PIECE


def read(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    while chunk := body.read(8192):
        digest.update(chunk)
        size += len(chunk)
    return _text(start_response, f"{size} {digest.hexdigest()}\n".encode())


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _text(start_response, b"hello\n")


ROUTES = {"/cancellable": cancellable, "/stream": stream, "/read": read, "/hello": hello}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch on PATH_INFO; 404 for anything else."""
    target = ROUTES.get(environ.get("PATH_INFO", ""))
    if target is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]
    return target(environ, start_response)
