"""Minimal WSGI app: ``Hello, world!`` as text (README quickstart and smoke tests)."""

from __future__ import annotations

from collections.abc import Iterable

from m2bridge._types import Environ, StartResponse

BODY = b"Hello, world!\n"


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer every request with a short text body."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
