"""Short error responses a worker sends instead of running the app (400 for a malformed
message, 501, 503 when overloaded, 504), and where a malformed message's reply goes: bytes
in, bytes out, for ``dispatch.Dispatcher``.
"""

from __future__ import annotations

import dataclasses
import re

from m2bridge.wire.sender import SENDER_PATTERN
from m2bridge.wsgi.response import make_simple_response

_TARGET_RE = re.compile(rb"(%s) ([0-9]{1,20}) ([^ @][^ ]*) " % SENDER_PATTERN)
_REASONS = {
    400: "Bad Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorReply:
    """A short error response to send (and close) instead of running the app."""

    status: int
    method: str = "GET"
    version: str = "HTTP/1.1"
    retry_after: int | None = None


def reply_target(frame: bytes) -> tuple[bytes, int] | None:
    """Sender and connection id of a malformed message, if readable and not a notice."""
    match = _TARGET_RE.match(frame)
    return (match.group(1), int(match.group(2))) if match else None


def error_page(reply: ErrorReply) -> bytes:
    """The bytes of a short plain-text error response that closes the connection."""
    reason = _REASONS.get(reply.status, "Error")
    version = reply.version if reply.version in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
    headers = () if reply.retry_after is None else (("Retry-After", str(reply.retry_after)),)
    data, _ = make_simple_response(
        f"{reply.status} {reason}",
        f"{reason}\n".encode(),
        method=reply.method,
        version=version,
        keep_alive=False,
        headers=headers,
    )
    return data
