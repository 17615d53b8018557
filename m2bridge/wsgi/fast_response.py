"""The fast path's response: ``start_response`` for the common case, and heads checked once.

``SimpleStart`` is PEP 3333's ``start_response`` for one request. Its first call (without
``exc_info``) is checked like ``Response.start_response`` (same checks, same errors) but
through a cache of whole heads: a status and header list seen before is not checked again.
Anything else (a second call, ``exc_info``, the ``write`` callable) makes it create the
reference ``Response`` at once, replay what came before, and hand every later call to it, so
from then on the two paths are one.

``SimpleStart.reply`` renders a simple outcome (a list or tuple of bytes, a status with a body, a
Content-Length that matches or none) straight into the Mongrel2 reply message, head and body
in one formatting step; it returns None for anything else, and the caller finishes through
``handler.finish_wsgi`` with ``SimpleStart.to_response()``. The bytes are those the reference
path sends (tests/unit/wsgi/test_fast_response.py compares them over a corpus of apps).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from m2bridge.wsgi import speedups
from m2bridge.wsgi.response import Response, check_header_list, check_status, date_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from m2bridge._types import OptExcInfo

#: Heads kept at most; the cache is cleared when full (so per-request values cannot grow it).
HEAD_CACHE_LIMIT = 512
_NO_BODY_CODES = frozenset({204, 304})


class Head(NamedTuple):
    """A checked status and header list, as the framing layer needs them."""

    code: int
    #: The status line and the application's kept header lines, for HTTP/1.1 and HTTP/1.0.
    line11: bytes
    line10: bytes
    close: bool
    has_date: bool
    length: int | None
    #: The status lets a body and a Content-Length through (not 1xx, 204 or 304).
    plain: bool


#: ``SimpleStart.reply``: ``(message, close after it, status code, body length)``.
Reply = tuple[bytes, bool, int, int]

_HEADS: dict[tuple[str, tuple[object, ...]], Head] = {}


def checked_head(status: str, headers: list[tuple[str, str]]) -> Head:
    """Check a status and header list (cached); raise ``ResponseError`` as ``Response`` does."""
    if type(headers) is list:
        try:
            return _HEADS[status, tuple(headers)]
        except (KeyError, TypeError):  # TypeError: an unhashable item, refused below
            pass
    code = check_status(status)
    text, close, has_date, length = check_header_list(headers)  # a list of (str, str) now
    line = f" {status}\r\n{text}".encode("latin-1")
    plain = code >= 200 and code not in _NO_BODY_CODES
    head = Head(code, b"HTTP/1.1" + line, b"HTTP/1.0" + line, close, has_date, length, plain)
    if len(_HEADS) >= HEAD_CACHE_LIMIT:
        _HEADS.clear()
    _HEADS[status, tuple(headers)] = head
    return head


def render_reply(
    sender: bytes, conn_id: int, line: bytes, date: bytes, end: bytes, body: bytes
) -> bytes:
    """The Mongrel2 reply carrying a whole response (``_speedups.render_reply``'s twin)."""
    return b"%b %d:%d, %b%bContent-Length: %d\r\n%b%b" % (
        sender, len(str(conn_id)), conn_id, line, date, len(body), end, body
    )  # fmt: skip


_render_reply = render_reply if speedups.compiled is None else speedups.compiled.render_reply
#: The Date line of the current second, and that second (formatted once a second).
_date_line = b""
_date_second = 0


def current_date_line() -> bytes:
    """``Date: ...`` of now, CRLF included, as the reference ``Response`` writes it."""
    global _date_line, _date_second
    second = int(time.time())
    if second != _date_second:
        _date_line, _date_second = date_line(second).encode("latin-1"), second
    return _date_line


class SimpleStart:
    """``start_response`` of one request on the fast path (see the module docstring)."""

    __slots__ = ("_headers", "_keep_alive", "_method", "_status", "_version", "head", "response")

    def __init__(self, method: str, version: str, keep_alive: bool) -> None:
        self._method = method
        self._version = version
        self._keep_alive = keep_alive
        self.head: Head | None = None
        self.response: Response | None = None

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is None and self.head is None and self.response is None:
            self.head = checked_head(status, headers)
            self._status, self._headers = status, headers
            return self.write
        return self.to_response().start_response(status, headers, exc_info)

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write`` callable (the reference ``Response`` takes over)."""
        self.to_response().app_write(data)

    def to_response(self) -> Response:
        """The reference ``Response`` in the state this request reached (created once)."""
        response = self.response
        if response is None:
            response = Response(self._method, self._version, self._keep_alive)
            if self.head is not None:
                response.start_response(self._status, self._headers)
            self.response = response
        return response

    def reply(self, result: object, sender: bytes, conn_id: int) -> Reply | None:
        """The Mongrel2 reply carrying the whole response, when the outcome is simple.

        Returns:
            The reply, or None: finish through the reference ``Response`` instead
            (``to_response()`` and ``handler.finish_wsgi``).
        """
        head = self.head
        if head is None or not head.plain or self.response is not None or self._method == "HEAD":
            return None
        kind = type(result)
        if kind is not list and kind is not tuple:
            return None
        try:
            body = b"".join(result)  # type: ignore[arg-type]
        except TypeError:
            return None
        length = head.length
        if length is not None and length != len(body):
            return None
        close = head.close or not self._keep_alive
        if self._version == "HTTP/1.0":
            line = head.line10
            end = b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n"
        else:
            line = head.line11
            end = b"Connection: close\r\n\r\n" if close else b"\r\n"
        date = b"" if head.has_date else current_date_line()
        try:
            message = _render_reply(sender, conn_id, line, date, end, body)
        except OverflowError:  # a connection id past 64 bits: the compiled one declines it
            message = render_reply(sender, conn_id, line, date, end, body)
        return message, close, head.code, len(body)
