"""Sans-IO WebSocket pieces a Mongrel2 handler sends itself (RFC 6455), and close codes.

Mongrel2 1.12.2 computes ``Sec-WebSocket-Accept`` and unmasks and reassembles what clients
send, but it answers nothing: the handler writes the ``101 Switching Protocols`` response
(``handshake_response``), every server frame (``encode_frame``: unmasked, as a server must),
the pong to each ping and the close frame that answers a close (MONGREL2.md 2.5).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re
import struct

from m2bridge.errors import ProtocolError

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})
DATA_OPCODES = frozenset({OP_TEXT, OP_BINARY})

#: Close codes (RFC 6455 7.4.1) used by this package.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005  # reported, never sent: the close frame had no code
CLOSE_ABNORMAL = 1006  # reported, never sent: the connection ended without a close frame
CLOSE_INVALID_DATA = 1007
CLOSE_INTERNAL_ERROR = 1011

#: A control frame's payload is at most this long (RFC 6455 5.5).
MAX_CONTROL_PAYLOAD = 125
_MAX_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2
_ACCEPT_RE = re.compile(r"[A-Za-z0-9+/]{27}=\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """Build one unmasked server-to-client frame.

    Args:
        opcode: ``OP_TEXT``, ``OP_BINARY``, ``OP_CLOSE``, ``OP_PING``, ``OP_PONG`` or
            ``OP_CONTINUATION``.
        payload: the frame payload (already UTF-8 for text).
        fin: whether this is the last frame of its message (control frames must be final).

    Raises:
        ProtocolError: an unknown opcode, or a control frame that is fragmented or longer
            than 125 bytes.
    """
    if opcode not in CONTROL_OPCODES and opcode not in DATA_OPCODES and opcode != OP_CONTINUATION:
        raise ProtocolError(f"unknown WebSocket opcode {opcode:#x}", 500)
    if opcode in CONTROL_OPCODES and (not fin or len(payload) > MAX_CONTROL_PAYLOAD):
        raise ProtocolError("a control frame must be final and at most 125 bytes", 500)
    first = (0x80 if fin else 0x00) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, 126, size)
    else:
        head = struct.pack("!BBQ", first, 127, size)
    return head + payload


def encode_message(message: str | bytes) -> bytes:
    """One final frame carrying ``message``: text for ``str`` (UTF-8), binary for ``bytes``."""
    if isinstance(message, str):
        return encode_frame(OP_TEXT, message.encode("utf-8"))
    if isinstance(message, bytes | bytearray | memoryview):
        return encode_frame(OP_BINARY, bytes(message))
    raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")


def is_sendable_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4: 1000-2999 registered, minus
    the reserved ones, or 3000-4999 for libraries and applications)."""
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1014 and code not in (1004, 1005, 1006)


def encode_close_payload(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """The payload of a close frame: a 2-byte code then a UTF-8 reason.

    Raises:
        ProtocolError: a code that may not be sent, or a reason over 123 bytes.
    """
    if not is_sendable_close_code(code):
        raise ProtocolError(f"close code {code} may not be sent", 500)
    raw = reason.encode("utf-8")
    if len(raw) > _MAX_REASON_BYTES:
        raise ProtocolError(f"close reason is {len(raw)} bytes; at most 123 fit", 500)
    return struct.pack("!H", code) + raw


def encode_close_frame(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """A whole close frame (see ``encode_close_payload``)."""
    return encode_frame(OP_CLOSE, encode_close_payload(code, reason))


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Read a client's close frame payload: ``(code, reason)``; no code gives 1005.

    Raises:
        ProtocolError: a 1-byte payload, a code that may not be sent, or a reason that is
            not UTF-8 (the caller answers with close code 1002 or 1007).
    """
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError("close frame payload of 1 byte")
    (code,) = struct.unpack("!H", payload[:2])
    if not is_sendable_close_code(code):
        raise ProtocolError(f"close frame with invalid code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("close reason is not UTF-8") from None
    return code, reason


def decode_text(payload: bytes) -> str:
    """A text message's payload as ``str``.

    Raises:
        ProtocolError: the payload is not UTF-8 (close code 1007).
    """
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"text message is not UTF-8: {exc.reason}") from None


def handshake_response(accept: str, protocol: str | None = None) -> bytes:
    """The ``101 Switching Protocols`` response for a handshake Mongrel2 forwarded.

    Args:
        accept: the ``Sec-WebSocket-Accept`` value (the body of Mongrel2's handshake message).
        protocol: the subprotocol chosen from the client's ``Sec-WebSocket-Protocol``, if any.

    Raises:
        ProtocolError: ``accept`` is not a base64 SHA-1 digest, or ``protocol`` not a token.
    """
    if not _ACCEPT_RE.match(accept):
        raise ProtocolError("Sec-WebSocket-Accept is not a base64 SHA-1 digest")
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
    ]
    if protocol is not None:
        if not _TOKEN_RE.match(protocol):
            raise ProtocolError(f"subprotocol {protocol[:40]!r} is not a token", 500)
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def decode_frames(data: bytes) -> tuple[list[tuple[int, bool, bytes]], bytes]:
    """Split a byte stream into whole frames (masked or not), for tests and tools.

    Returns:
        ``[(opcode, fin, payload), ...]`` for each complete frame (payloads unmasked), and the
        bytes of an incomplete last frame.
    """
    frames: list[tuple[int, bool, bytes]] = []
    offset = 0
    while (frame := _decode_one(data, offset)) is not None:
        opcode, fin, payload, offset = frame
        frames.append((opcode, fin, payload))
    return frames, data[offset:]


def _decode_one(data: bytes, offset: int) -> tuple[int, bool, bytes, int] | None:
    if len(data) - offset < 2:
        return None
    first, second = data[offset], data[offset + 1]
    size, pos = second & 0x7F, offset + 2
    if size >= 126:
        width = 2 if size == 126 else 8
        if len(data) < pos + width:
            return None
        size = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    mask = b""
    if second & 0x80:
        mask, pos = data[pos : pos + 4], pos + 4
    if len(data) < pos + size:
        return None
    payload = data[pos : pos + size]
    if mask:
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return first & 0x0F, bool(first & 0x80), payload, pos + size
