"""A WSGI app with a large response: 256 KiB of bytes in one piece, with Content-Length."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

SIZE = 256 * 1024
BODY = bytes(range(256)) * (SIZE // 256)
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer every request with ``BODY``."""
    start_response("200 OK", list(HEADERS))
    return [BODY]
