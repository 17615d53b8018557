"""Sans-IO WSGI response: start_response rules, status/header checks and HTTP/1.x framing.

``Response`` turns what a WSGI application produces (status, headers, body bytes) into the raw
HTTP bytes Mongrel2 copies to the client. It never touches a socket. The rules (after werkzeug's
``run_wsgi``, reimplemented as a class):

- ``start_response`` validates the status (``NNN reason``) and every header (RFC 9110 token
  names, latin-1 values without CR/LF/NUL or other controls) and raises ``ResponseError`` (a
  ``ValueError``) otherwise: response splitting is impossible. A second call needs
  ``exc_info``; with ``exc_info`` after the headers left it re-raises the application's error.
- The header block is held back until the first non-empty body bytes or ``finish``, so a small
  response leaves as one piece of bytes.
- Framing: the application's Content-Length is honoured (extra bytes are cut off, missing ones
  close the connection); otherwise a body known in full at ``finish`` gets a Content-Length,
  HTTP/1.1 streams use chunked encoding and HTTP/1.0 streams end by closing. HEAD, 1xx, 204 and
  304 responses never carry body bytes.
- Hop-by-hop headers belong to this layer: the application's are dropped (its
  ``Connection: close`` is obeyed), and ``Connection: close`` / ``keep-alive`` are added as needed.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

from m2bridge.errors import M2BridgeError

if TYPE_CHECKING:
    from m2bridge._types import OptExcInfo

log = logging.getLogger("m2bridge.wsgi.response")
_K = TypeVar("_K")
_V = TypeVar("_V")

FILE_BLOCK_SIZE = 65536
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_STATUS_RE = re.compile(r"([1-9][0-9]{2}) [\t\x20-\x7e\x80-\xff]*\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VALUE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
_MAX_LENGTH_DIGITS = 18
# Checked statuses and header items, so the usual constant ones are checked once per process.
# Bounded: cleared when full; long values (cookies, say) are never kept.
_CACHE_LIMIT = 512
_CACHEABLE_VALUE_LENGTH = 160
_KEEP, _DATE, _LENGTH, _HOP = range(4)
_Checked = tuple[int, str, int]  # (kind, header line to send, Content-Length or close flag)
_STATUS_CODES: dict[str, int] = {}
_CHECKED_HEADERS: dict[tuple[str, str], _Checked] = {}
_LAST_CHUNK = b"0\r\n\r\n"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ResponseError(M2BridgeError, ValueError):
    """The application broke a PEP 3333 rule or produced an unsafe status or header.

    The handler answers 500 (or closes the connection when the headers already left).
    """


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like object in blocks; ``close()`` closes it."""

    def __init__(self, filelike: _Readable, block_size: int = FILE_BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def connection_tokens(value: str | None) -> set[str]:
    """Return the lower-cased comma-separated tokens of a Connection header value."""
    if not value:
        return set()
    return {token.strip().lower() for token in value.split(",")}


def keep_alive_requested(version: str, connection_header: str | None) -> bool:
    """Tell whether the client wants the connection kept open after this response.

    HTTP/1.1 (and later) keeps it unless ``Connection: close``; HTTP/1.0 only with
    ``Connection: keep-alive``. ``close`` always wins.
    """
    if not connection_header:
        return version != "HTTP/1.0"
    tokens = connection_tokens(connection_header)
    if "close" in tokens:
        return False
    return version != "HTTP/1.0" or "keep-alive" in tokens


@lru_cache(maxsize=4)
def http_date(second: int) -> str:
    """Return the RFC 7231 IMF-fixdate of a Unix second (cached: one format per second).

    Formatted by hand: ``email.utils`` imports ``socket`` and ``strftime`` follows the locale.
    """
    t = time.gmtime(second)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


@lru_cache(maxsize=4)
def date_line(second: int) -> str:
    """The ``Date`` header line of a Unix second, CRLF included (cached)."""
    return f"Date: {http_date(second)}\r\n"


def check_status(status: object) -> int:
    """Return the status code of a WSGI status string, or raise ``ResponseError``."""
    match = _STATUS_RE.match(status) if isinstance(status, str) else None
    if match is None:
        raise ResponseError(f"invalid status {status!r:.80}: expected 'NNN reason' in latin-1")
    code = int(match.group(1))
    if type(status) is str:
        _remember(_STATUS_CODES, status, code)
    return code


def check_header(item: object) -> tuple[str, str]:
    """Return a validated ``(name, value)`` response header, or raise ``ResponseError``."""
    if not (isinstance(item, tuple) and len(item) == 2):
        raise ResponseError(f"response header is not a (name, value) tuple: {item!r:.80}")
    name, value = item
    if not (isinstance(name, str) and _TOKEN_RE.match(name)):
        raise ResponseError(f"invalid response header name {name!r:.80}")
    if not (isinstance(value, str) and _VALUE_RE.match(value)):
        raise ResponseError(
            f"invalid value for response header {name}: {value!r:.80} "
            "(CR, LF, NUL, other controls and non-latin-1 text are refused)"
        )
    return name, value


def parse_content_length(value: str) -> int:
    """Return a Content-Length header value as an int, or raise ``ResponseError``."""
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_LENGTH_DIGITS):
        raise ResponseError(f"invalid Content-Length {value!r:.80}")
    return int(value)


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _check_item(item: object) -> _Checked:
    """Validate and classify one header item (``check_header`` plus the hop-by-hop rules)."""
    name, value = check_header(item)
    lower = name.lower()
    if lower == "content-length":
        checked = (_LENGTH, "", parse_content_length(value))
    elif lower in HOP_BY_HOP:
        close = lower == "connection" and "close" in connection_tokens(value)
        checked = (_HOP, "", int(close))
    else:
        checked = (_DATE if lower == "date" else _KEEP, f"{name}: {value}\r\n", 0)
    if type(name) is str and type(value) is str and len(value) <= _CACHEABLE_VALUE_LENGTH:
        _remember(_CHECKED_HEADERS, (name, value), checked)
    return checked


CheckedHeaders = tuple[str, bool, bool, int | None]


def check_header_list(headers: object) -> CheckedHeaders:
    """Validate the application's headers; return what the framing layer needs.

    Returns:
        ``(kept header lines rendered as one string, the app asked to close, it sent a Date,
        its Content-Length or None)``. An exact ``(str, str)`` item seen (and checked) before
        is found in a cache instead of being checked again.
    """
    if not isinstance(headers, list):
        raise ResponseError("response headers must be a list of (name, value) tuples")
    text = ""
    close = has_date = False
    length: int | None = None
    conflicting: list[int] = []
    for item in headers:
        try:
            checked = _CHECKED_HEADERS.get(item) if type(item) is tuple else None
        except TypeError:  # an unhashable name or value: _check_item refuses it
            checked = None
        kind, line, number = checked or _check_item(item)
        if kind == _KEEP:
            text += line
        elif kind == _LENGTH:
            if length is None:
                length = number
            elif number != length:
                conflicting += (length, number)
        elif kind == _DATE:
            has_date = True
            text += line
        else:
            close = close or bool(number)
    if conflicting:
        raise ResponseError(f"conflicting Content-Length headers {sorted(set(conflicting))}")
    return text, close, has_date, length


class Response:
    """The state of one HTTP response produced by a WSGI application.

    Attributes:
        version: the status-line version (``HTTP/1.0`` for 1.0 requests, else ``HTTP/1.1``).
        status: the status string, once ``start_response`` accepted one.
        status_code: its integer code.
        headers_sent: the header block has been returned by ``write`` or ``finish``.
        finished: ``finish`` has run; nothing more may be written.
        body_bytes: body bytes emitted (without chunk framing).
        should_close: the connection must be closed after this response (read it after
            ``finish``).
    """

    __slots__ = (
        "_body_allowed",
        "_chunked",
        "_declared",
        "_has_date",
        "_head_request",
        "_header_text",
        "_now",
        "_overrun",
        "_pending",
        "body_bytes",
        "finished",
        "headers_sent",
        "keep_alive",
        "should_close",
        "status",
        "status_code",
        "version",
    )

    def __init__(
        self, method: str, version: str, keep_alive: bool, now: Callable[[], float] = time.time
    ) -> None:
        self.version = "HTTP/1.0" if version == "HTTP/1.0" else "HTTP/1.1"
        self.keep_alive = keep_alive
        self.status: str | None = None
        self.status_code: int | None = None
        self.headers_sent = self.finished = self._chunked = self._overrun = False
        self.body_bytes = 0
        self.should_close = not keep_alive
        self._head_request = method == "HEAD"
        self._now = now
        self._header_text = ""
        self._has_date = False
        self._declared: int | None = None
        self._body_allowed = True
        self._pending: list[bytes] = []

    # ------------------------------------------------------------------ the WSGI side

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], None]:
        """The PEP 3333 ``start_response`` callable.

        Raises:
            ResponseError: a second call without ``exc_info``, or an invalid status or header.
            BaseException: ``exc_info``'s exception, when the headers already left.
        """
        if exc_info is not None and exc_info[1] is not None:
            if self.headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise ResponseError("start_response() called a second time without exc_info")
        code = _STATUS_CODES.get(status) if type(status) is str else None
        if code is None:
            code = check_status(status)
        text, close, has_date, length = check_header_list(headers)
        self.status, self.status_code = status, code
        self._header_text, self._has_date, self._declared = text, has_date, length
        self._body_allowed = not (self._head_request or code < 200 or code in (204, 304))
        self.should_close = close or not self.keep_alive
        return self.app_write

    def app_write(self, data: bytes) -> None:
        """The ``write`` callable of PEP 3333: queue the bytes for the next ``drain``."""
        ready = self.write(data)  # before reading self._pending: write() drains it
        self._pending.extend(ready)

    # ------------------------------------------------------------------ the server side

    def drain(self) -> list[bytes]:
        """Return (and forget) the bytes queued by the application's ``write`` callable."""
        pending, self._pending = self._pending, []
        return pending

    def write(self, data: bytes) -> list[bytes]:
        """Add body bytes; return what is ready to send (queued bytes first), maybe ``[]``.

        Raises:
            ResponseError: ``data`` is not bytes, the response finished, or no status yet.
        """
        if not isinstance(data, bytes | bytearray):
            raise ResponseError(f"response body must be bytes, not {type(data).__name__}")
        if self.finished:
            raise ResponseError("write() after the response finished")
        if not data:
            return self.drain()
        if self.status is None:
            raise ResponseError("response body before start_response() was called")
        head = b"" if self.headers_sent else self._head(None)
        return self._ready(head + self._frame(bytes(data)))

    def finish(self, tail: bytes = b"") -> list[bytes]:
        """End the response; ``tail`` is the last body bytes, if any (queued bytes go first).

        When the header block has not left yet, the whole body is ``tail`` and gets a
        Content-Length. A second call returns ``[]``.

        Raises:
            ResponseError: ``start_response`` was never called.
        """
        if self.finished:
            return []
        if self.status is None:
            raise ResponseError("the application never called start_response()")
        self.finished = True
        out = b"" if self.headers_sent else self._head(len(tail))
        if tail:
            out += self._frame(tail if type(tail) is bytes else bytes(tail))
        if self._chunked:
            out += _LAST_CHUNK
        if self._body_allowed and self._declared is not None and self.body_bytes < self._declared:
            log.warning(
                "response ended after %d of %d Content-Length bytes; closing the connection",
                self.body_bytes,
                self._declared,
            )
            self.should_close = True
        return self._ready(out)

    # ------------------------------------------------------------------ framing

    def _ready(self, out: bytes) -> list[bytes]:
        if not self._pending:  # the usual case: nothing held back by write()
            return [out] if out else []
        pending = self.drain()
        if out:
            pending.append(out)
        return [b"".join(pending)] if len(pending) > 1 else pending

    def _frame(self, data: bytes) -> bytes:
        if not self._body_allowed:
            return b""
        if self._declared is not None:
            remaining = self._declared - self.body_bytes
            if len(data) > remaining:
                self._cut(len(data) - remaining)
                data = data[:remaining]
        self.body_bytes += len(data)
        if self._chunked and data:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def _cut(self, extra: int) -> None:
        if not self._overrun:
            log.warning(
                "application sent more than its Content-Length of %d; %d bytes dropped, closing",
                self._declared,
                extra,
            )
        self._overrun = True
        self.should_close = True

    def _head(self, known_length: int | None) -> bytes:
        self.headers_sent = True
        date = "" if self._has_date else date_line(int(self._now()))
        framing = self._framing(known_length)
        if self.should_close:
            end = "Connection: close\r\n\r\n"
        else:
            end = "Connection: keep-alive\r\n\r\n" if self.version == "HTTP/1.0" else "\r\n"
        head = f"{self.version} {self.status}\r\n{self._header_text}{date}{framing}{end}"
        return head.encode("latin-1")

    def _framing(self, known_length: int | None) -> str:
        code = self.status_code or 0
        if code < 200 or code == 204:
            self._declared = None
            return ""
        if self._declared is not None:
            return f"Content-Length: {self._declared}\r\n"
        if not self._body_allowed:
            return ""
        if known_length is not None:
            self._declared = known_length
            return f"Content-Length: {known_length}\r\n"
        if self.version == "HTTP/1.1":
            self._chunked = True
            return "Transfer-Encoding: chunked\r\n"
        self.should_close = True
        return ""


def make_simple_response(
    status: str,
    body: bytes,
    *,
    method: str,
    version: str,
    keep_alive: bool,
    headers: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, bool]:
    """Render a complete small response (an error page, say) in one piece.

    Returns:
        ``(raw HTTP bytes, should_close)``.
    """
    response = Response(method, version, keep_alive)
    response.start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers])
    return b"".join(response.finish(body)), response.should_close
