"""Sans-IO Mongrel2 handler protocol, the writing side: the messages a handler sends back.

``encode_reply`` (and ``encode_close``, ``encode_broadcast``, ``encode_control``) build what a
handler publishes to Mongrel2; ``encode_request`` builds what Mongrel2 sends to a handler (for
tests and fakes), the inverse of ``protocol.parse_message``. Bad arguments raise
``ProtocolError`` (``error_status_hint`` 500: a bug on our side, not the client's).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import tnetstring

from m2bridge.errors import ProtocolError
from m2bridge.wire.protocol import Headers, HeaderValue
from m2bridge.wire.sender import SENDER_RULE, is_sender

#: At most this many connection ids fit in one reply (Mongrel2's ``limits.handler_targets``).
MAX_TARGETS = 128


def encode_reply(sender: bytes, conn_ids: Iterable[int], body: bytes) -> bytes:
    """Build one reply message: ``SENDER LEN:ID ID ..., BODY``.

    Args:
        sender: the handler's identity (``[A-Za-z0-9-]+``), usually the request's ``sender``.
        conn_ids: 1 to ``MAX_TARGETS`` connection ids.
        body: bytes Mongrel2 copies to each client; empty means "close the connection".

    Raises:
        ProtocolError: a bad sender, no ids, too many ids, or a negative id.
    """
    _check_sender(sender)
    ids = _encode_ids(list(conn_ids))
    return b"%s %d:%s, %s" % (sender, len(ids), ids, body)


def _encode_ids(conn_ids: list[int]) -> bytes:
    if len(conn_ids) == 1 and type(conn_ids[0]) is int and conn_ids[0] >= 0:
        return b"%d" % conn_ids[0]  # the usual reply
    if not conn_ids:
        raise ProtocolError("a reply needs at least one connection id", 500)
    if len(conn_ids) > MAX_TARGETS:
        raise ProtocolError(f"a reply takes at most {MAX_TARGETS} connection ids", 500)
    if set(map(type, conn_ids)) == {int} and min(conn_ids) >= 0:  # all plain ints, at C speed
        return " ".join(map(str, conn_ids)).encode()
    return b" ".join(map(_encode_id, conn_ids))  # int subclasses, or the precise error


def _check_sender(sender: bytes) -> None:
    if not isinstance(sender, bytes) or not is_sender(sender):
        raise ProtocolError(f"sender {sender!r} is not bytes matching {SENDER_RULE}", 500)


def _encode_id(conn_id: int) -> bytes:
    if isinstance(conn_id, bool) or not isinstance(conn_id, int) or conn_id < 0:
        raise ProtocolError(f"invalid connection id {conn_id!r}", 500)
    return b"%d" % conn_id


def encode_close(sender: bytes, conn_ids: Iterable[int]) -> bytes:
    """Build the empty reply that makes Mongrel2 close the connections."""
    return encode_reply(sender, conn_ids, b"")


def encode_broadcast(sender: bytes, conn_ids: Iterable[int], body: bytes) -> list[bytes]:
    """Build the replies delivering ``body`` to any number of connections (``MAX_TARGETS`` each).

    No ids give no messages.
    """
    ids = list(conn_ids)
    return [
        encode_reply(sender, ids[start : start + MAX_TARGETS], body)
        for start in range(0, len(ids), MAX_TARGETS)
    ]


def encode_control(sender: bytes, conn_id: int, ctl: Mapping[str, int | bool]) -> bytes:
    """Build an extended ``ctl`` reply (``X`` before the id), e.g. ``{"credits": 30000}``.

    Mongrel2 uses these for ``upload.stream`` credits, ``keep-alive`` and ``cancel``.
    """
    _check_sender(sender)
    target = b"X %s" % _encode_id(conn_id)
    payload = tnetstring.dumps([b"ctl", {key.encode(): value for key, value in ctl.items()}])
    return b"%s %d:%s, %s" % (sender, len(target), target, payload)


def encode_request(
    sender: bytes, conn_id: int, path: str, headers: Headers, body: bytes, *, json_headers: bool
) -> bytes:
    """Build a message exactly as Mongrel2 sends it to a handler (for tests and fakes).

    ``parse_message`` is its inverse. The JSON form is Mongrel2's: an object in a netstring
    with only ``"`` and ``\\`` escaped and every other (latin-1) byte copied raw.

    Args:
        sender, conn_id, path, headers, body: the fields of a ``Request``.
        json_headers: the handler's ``protocol='json'`` (else ``'tnetstring'``).

    Raises:
        ProtocolError: a header, the path or the sender cannot be encoded in latin-1.
    """
    try:
        raw = {key.encode("latin-1"): _encode_value(value) for key, value in headers.items()}
        raw_path = path.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"cannot encode a message field in latin-1: {exc}", 500) from None
    _check_sender(sender)
    head = _json_object(raw) if json_headers else _tnetstring_dict(raw)
    return b"%s %d %s %s%d:%s," % (sender, conn_id, raw_path, head, len(body), body)


def _encode_value(value: HeaderValue) -> bytes | list[bytes]:
    if isinstance(value, str):
        return value.encode("latin-1")
    return [item.encode("latin-1") for item in value]


def _tnetstring_dict(headers: Mapping[bytes, bytes | list[bytes]]) -> bytes:
    # item by item: tnetstring.dumps(dict) writes the keys in reverse order
    items = b"".join(tnetstring.dumps(k) + tnetstring.dumps(v) for k, v in headers.items())
    return b"%d:%s}" % (len(items), items)


def _json_object(headers: Mapping[bytes, bytes | list[bytes]]) -> bytes:
    items = b",".join(_json_string(k) + b":" + _json_value(v) for k, v in headers.items())
    return b"%d:{%s}," % (len(items) + 2, items)


def _json_value(value: bytes | list[bytes]) -> bytes:
    if isinstance(value, bytes):
        return _json_string(value)
    return b"[" + b",".join(_json_string(item) for item in value) + b"]"


def _json_string(raw: bytes) -> bytes:
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
