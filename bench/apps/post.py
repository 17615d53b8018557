"""A WSGI app that reads a whole request body (the 100 KB upload) and answers with its size."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

CHUNK = 64 * 1024


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read ``wsgi.input`` to the end (``CONTENT_LENGTH`` bytes) and report how many arrived."""
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    received = 0
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        received += len(chunk)
        remaining -= len(chunk)
    body = f"received {received} bytes".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
