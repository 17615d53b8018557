"""Sans-IO Mongrel2 handler protocol, the reading side: bytes in, events out.

A request message from Mongrel2 is ``SENDER SP CONN_ID SP PATH SP HEADERS BODY`` where
HEADERS is a tnetstring dict (``protocol='tnetstring'``) or a netstring holding a JSON object
(``protocol='json'``, Mongrel2's default) and BODY is a netstring. ``parse_message`` turns one
such message into one event; any malformed input raises ``ProtocolError`` and nothing else.
The writing side (replies, and requests as Mongrel2 sends them) is ``m2bridge.wire.encode``.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import tnetstring
import ujson

from m2bridge.errors import ProtocolError
from m2bridge.wire.sender import SENDER_RULE, is_sender

HeaderValue = str | list[str]
Headers = Mapping[str, HeaderValue]

#: Netstring lengths with more digits than this are refused (a 1 TB length is already absurd).
MAX_LENGTH_DIGITS = 12
NOTICE_PATH = "@*"
UPLOAD_START = "x-mongrel2-upload-start"
UPLOAD_DONE = "x-mongrel2-upload-done"

_METHOD_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]\Z")
COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
COMMON_VERSIONS = frozenset({"HTTP/1.1", "HTTP/1.0"})
_STR_TYPE = frozenset({str})
#: ``json.loads(text, strict=False)`` would build a new decoder on every call.
_JSON_DECODER = json.JSONDecoder(strict=False)
_FLAGS_RE = re.compile(r"(?:0x)?[0-9A-Fa-f]{1,2}\Z")
#: Header names every request carries, decoded once: a dict lookup is cheaper than a decode.
_HEADER_NAMES: dict[object, str] = {
    name.encode("latin-1"): name
    for name in (
        *("PATH", "METHOD", "VERSION", "URI", "QUERY", "FRAGMENT", "PATTERN", "URL_SCHEME"),
        *("REMOTE_ADDR", "DOWNLOAD_CREDITS", "UPLOAD_STREAM", "UPLOAD_STREAM_DONE"),
        *("host", "user-agent", "accept", "accept-encoding", "accept-language", "connection"),
        *("content-length", "content-type", "cookie", "referer", "origin", "x-forwarded-for"),
        *("cache-control", "authorization", "if-none-match", "if-modified-since", "upgrade"),
        *(UPLOAD_START, UPLOAD_DONE),
    )
}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request Mongrel2 forwarded to this handler.

    ``headers`` keys are exactly as Mongrel2 sends them (its own keys upper case, client headers
    lower case); values are latin-1 ``str`` (a ``list`` for a repeated header).
    """

    sender: bytes
    conn_id: int
    path: str
    headers: Headers
    body: bytes

    @property
    def method(self) -> str:
        return str(self.headers.get("METHOD", ""))

    @property
    def version(self) -> str:
        return str(self.headers.get("VERSION", "HTTP/1.0"))

    def header(self, name: str) -> str | None:
        """Return one header joined into a single string, or None when absent."""
        value = self.headers.get(name)
        if value is None or isinstance(value, str):
            return value
        return join_header(name, value)


@dataclass(frozen=True, slots=True)
class UploadStarted(Request):
    """Mongrel2 began writing a large or chunked body to ``upload_path`` (inside its chroot)."""

    upload_path: str


@dataclass(frozen=True, slots=True)
class UploadDone(Request):
    """The body announced by ``UploadStarted`` is complete in ``upload_path`` (inside the chroot).

    The header can be forged by a client: the caller must check that the same connection got an
    ``UploadStarted`` for the same path before opening it.
    """

    upload_path: str


@dataclass(frozen=True, slots=True)
class StreamedRequest(Request):
    """First message of a request whose body streams (``upload.stream=1``).

    ``body`` holds the bytes Mongrel2 had already read; ``UploadChunk`` events bring the rest.
    """


@dataclass(frozen=True, slots=True)
class UploadChunk:
    """A later piece of a streamed request body, starting at ``offset``."""

    sender: bytes
    conn_id: int
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class WebSocketHandshake(Request):
    """A WebSocket upgrade; ``body`` is the ``Sec-WebSocket-Accept`` value Mongrel2 computed."""


@dataclass(frozen=True, slots=True)
class WebSocketFrame(Request):
    """One (reassembled, unmasked) WebSocket message; ``flags`` is the first frame byte."""

    flags: int

    @property
    def opcode(self) -> int:
        return self.flags & 0x0F


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The client of ``conn_id`` went away. Never answer it."""

    sender: bytes
    conn_id: int


@dataclass(frozen=True, slots=True)
class Credits:
    """With ``download.flow_control``, the client read ``credits`` more bytes. Never answer it."""

    sender: bytes
    conn_id: int
    credits: int


@dataclass(frozen=True, slots=True)
class JSONMessage:
    """Any other ``METHOD: JSON`` message (``@route`` JSON sockets, unknown notice types)."""

    sender: bytes
    conn_id: int
    path: str
    headers: Headers
    data: object


Event = Request | UploadChunk | Disconnect | Credits | JSONMessage  # with Request subclasses


# --------------------------------------------------------------------------- parsing


def parse_message(data: bytes) -> Event:
    """Parse one raw ZeroMQ message Mongrel2 sent to a handler into the event it carries.

    Raises:
        ProtocolError: the message is malformed in any way.
    """
    if type(data) is not bytes:  # isinstance() alone costs more than this whole check
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProtocolError(f"message must be bytes, not {type(data).__name__}")
        data = bytes(data)
    parts = data.split(b" ", 3)
    if len(parts) != 4:
        raise ProtocolError("message has fewer than four space-separated fields")
    sender, raw_id, raw_path, rest = parts
    if not is_sender(sender):
        raise ProtocolError(f"sender is not {SENDER_RULE}")
    if not raw_id.isdigit() or len(raw_id) > 20:
        raise ProtocolError("connection id is not a decimal number")
    headers, offset = _parse_headers(rest)
    body = parse_body(rest, offset)
    return _classify(sender, int(raw_id), raw_path.decode("latin-1"), headers, body)


def locate_headers(rest: bytes) -> tuple[int, int]:
    """Where the headers are in ``rest`` (the message after its path): ``(start, end)``.

    ``rest[start:end]`` is the payload and ``rest[end]`` the type byte: ``}`` for a tnetstring
    dict, ``,`` for a JSON netstring (anything else is left to the caller to refuse).

    Raises:
        ProtocolError: the netstring's length is missing, not a number, or past the end.
    """
    colon = rest.find(b":", 0, MAX_LENGTH_DIGITS + 1)
    if colon < 0 or not (digits := rest[:colon]).isdigit():
        raise ProtocolError("netstring length is missing or not a number")
    end = colon + 1 + int(digits)
    if end >= len(rest):
        raise ProtocolError("netstring is shorter than its length says")
    return colon + 1, end


def _parse_headers(rest: bytes) -> tuple[dict[str, HeaderValue], int]:
    start, end = locate_headers(rest)
    kind = rest[end]
    if kind == 0x7D:  # } (the codec reads the one dict at the start, no copy needed)
        return _tnetstring_headers(rest), end + 1
    if kind == 0x2C:  # ,
        return _json_headers(rest[start:end]), end + 1
    raise ProtocolError("headers are neither a tnetstring dict nor a JSON netstring")


def parse_body(rest: bytes, offset: int) -> bytes:
    """The body netstring at ``offset``, which must end ``rest``."""
    if len(rest) - offset == 3 and rest.endswith(b"0:,"):  # no body (most requests): b"0:,"
        return b""
    colon = rest.find(b":", offset, offset + MAX_LENGTH_DIGITS + 1)
    if colon < 0 or not (digits := rest[offset:colon]).isdigit():
        raise ProtocolError("netstring length is missing or not a number")
    end = colon + 1 + int(digits)
    if end != len(rest) - 1 or rest[end] != 0x2C:  # the one way to be right, tested first
        if end >= len(rest):
            raise ProtocolError("netstring is shorter than its length says")
        if rest[end] != 0x2C:
            raise ProtocolError("netstring does not end with b','")
        raise ProtocolError(f"{len(rest) - end - 1} trailing bytes after the body")
    return rest[colon + 1 : end]


def _tnetstring_headers(raw: bytes) -> dict[str, HeaderValue]:
    try:
        decoded = tnetstring.loads(raw)
    except Exception as exc:  # the C codec raises ValueError and friends
        raise ProtocolError(f"bad tnetstring headers: {exc}") from None
    known = _HEADER_NAMES.get
    headers: dict[str, HeaderValue] = {}
    try:  # one pass; only a name that is not bytes lacks .decode
        for key, value in decoded.items():
            headers[known(key) or key.decode("latin-1")] = (
                value.decode("latin-1") if type(value) is bytes else _header_list(value, bytes)
            )
    except AttributeError:
        raise ProtocolError("tnetstring header name is not a string") from None
    return headers


def _json_headers(payload: bytes) -> dict[str, HeaderValue]:
    try:
        decoded = _decode_json_headers(payload.decode("latin-1"))
    except ValueError as exc:
        raise ProtocolError(f"bad JSON headers: {exc}") from None
    except RecursionError:
        raise ProtocolError("JSON headers are nested too deeply") from None
    if not isinstance(decoded, dict):
        raise ProtocolError("JSON headers are not an object")
    if {*map(type, decoded.values())} <= _STR_TYPE:  # no list: keep the decoder's fresh dict
        headers = decoded
    else:
        headers = {k: v if type(v) is str else _header_list(v, str) for k, v in decoded.items()}
    if b"\\u" in payload:  # only a \uXXXX escape can yield a non-latin-1 character
        _check_latin1(headers)
    return headers


def _decode_json_headers(text: str) -> object:
    """``json.loads(text, strict=False)``, through ujson when it can (about 25% faster).

    ujson refuses raw control characters (then json decodes) and accepts a few inputs json
    refuses (``01``), all of them numbers, which no header may hold; the outcome for headers is
    the same (a property test in test_protocol_fuzz.py holds the two to it).
    """
    try:
        return ujson.loads(text)
    except Exception:  # ujson.JSONDecodeError, OverflowError...: let json decide
        return _JSON_DECODER.decode(text)


def _check_latin1(headers: Headers) -> None:
    for key, value in headers.items():
        for text in (key, *([value] if isinstance(value, str) else value)):
            if max(text, default="\0") > "\xff":
                raise ProtocolError("JSON header holds a \\u escape beyond latin-1")


def _header_list(value: object, kind: type) -> list[str]:
    """A repeated header; anything but a list of ``kind`` (str or bytes) is refused."""
    if isinstance(value, list) and all(isinstance(item, kind) for item in value):
        return [item.decode("latin-1") if kind is bytes else item for item in value]
    raise ProtocolError("header value is neither a string nor a list of strings")


_OBJECT_NEW = object.__new__
_SET_SENDER, _SET_CONN_ID, _SET_PATH, _SET_HEADERS, _SET_BODY = (
    getattr(Request, name).__set__ for name in ("sender", "conn_id", "path", "headers", "body")
)


def _new_request(sender: bytes, conn_id: int, path: str, headers: Headers, body: bytes) -> Request:
    """``Request(...)`` without the frozen dataclass ``__init__`` (half the cost, same object)."""
    request = _OBJECT_NEW(Request)
    _SET_SENDER(request, sender)
    _SET_CONN_ID(request, conn_id)
    _SET_PATH(request, path)
    _SET_HEADERS(request, headers)
    _SET_BODY(request, body)
    return request


def _classify(sender: bytes, conn_id: int, path: str, headers: Headers, body: bytes) -> Event:
    method = headers.get("METHOD")
    if method is None and "UPLOAD_STREAM" in headers:
        return _upload_chunk(sender, conn_id, headers, body)
    if not isinstance(method, str):
        raise ProtocolError("METHOD header is missing or repeated")
    if method == "JSON":
        return _json_message(sender, conn_id, path, headers, body)
    if method not in COMMON_METHODS and not _METHOD_RE.match(method):
        raise ProtocolError(f"invalid method {method[:40]!r}")
    version = headers.get("VERSION", "HTTP/1.0")
    if not isinstance(version, str) or (
        version not in COMMON_VERSIONS and not _VERSION_RE.match(version)
    ):
        raise ProtocolError("VERSION header is not HTTP/x.y")
    fields = (sender, conn_id, path, headers, body)
    if method == "WEBSOCKET_HANDSHAKE":
        return WebSocketHandshake(*fields)
    if method == "WEBSOCKET":
        return WebSocketFrame(*fields, flags=_websocket_flags(headers))
    if UPLOAD_DONE in headers:
        return UploadDone(*fields, upload_path=_upload_path(headers, UPLOAD_DONE))
    if UPLOAD_START in headers:
        return UploadStarted(*fields, upload_path=_upload_path(headers, UPLOAD_START))
    if "UPLOAD_STREAM" in headers:
        return StreamedRequest(*fields)
    return _new_request(*fields)


def _upload_path(headers: Headers, key: str) -> str:
    value = headers[key]
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{key} is repeated or empty", error_status_hint=400)
    return value


def _websocket_flags(headers: Headers) -> int:
    raw = headers.get("FLAGS")
    if not isinstance(raw, str):
        raise ProtocolError("WEBSOCKET message without a FLAGS header")
    if not _FLAGS_RE.match(raw):
        raise ProtocolError("WEBSOCKET FLAGS is not a hex byte like 0x81")
    return int(raw, 16)


def _upload_chunk(sender: bytes, conn_id: int, headers: Headers, body: bytes) -> UploadChunk:
    offset = _non_negative_int(headers.get("UPLOAD_STREAM"), "UPLOAD_STREAM")
    done = headers.get("UPLOAD_STREAM_DONE") is not None
    return UploadChunk(sender, conn_id, offset, body, done)


def _json_message(sender: bytes, conn_id: int, path: str, headers: Headers, body: bytes) -> Event:
    try:
        data = _JSON_DECODER.decode(body.decode("latin-1")) if body else None
    except ValueError as exc:
        raise ProtocolError(f"bad JSON message body: {exc}") from None
    except RecursionError:
        raise ProtocolError("JSON message body is nested too deeply") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if path == NOTICE_PATH and kind == "disconnect":
        return Disconnect(sender, conn_id)
    if path == NOTICE_PATH and kind == "credits":
        credits = _non_negative_int(headers.get("DOWNLOAD_CREDITS"), "DOWNLOAD_CREDITS")
        return Credits(sender, conn_id, credits)
    return JSONMessage(sender, conn_id, path, headers, data)


def _non_negative_int(value: object, name: str) -> int:
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise ProtocolError(f"{name} is not a non-negative integer")
    return int(value)


def join_header(name: str, values: Iterable[str]) -> str:
    """Join the copies of a repeated header as RFC 9110 says (``cookie`` with ``; ``)."""
    separator = "; " if name.lower() == "cookie" else ", "
    return separator.join(values)
