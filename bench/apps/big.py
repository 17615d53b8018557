"""A WSGI app with a large response: 256 KiB of bytes in one piece, with Content-Length."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..workload import BIG_SIZE, canned_body

BODY = canned_body("big")
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG_SIZE))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer every request with ``BODY``."""
    start_response("200 OK", list(HEADERS))
    return [BODY]
