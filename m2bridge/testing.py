"""Public test helpers: Mongrel2 message builders and ``FakeMongrel2``, Mongrel2's side over ipc.

``FakeMongrel2`` binds a PUSH (our ``send_spec``) and a SUB (our ``recv_spec``) on ``ipc://``
endpoints in a directory, exactly as Mongrel2 binds its sockets, so a real worker process
connects to it unchanged. Tests send request frames built by ``make_request_frame`` and read
the replies per connection id, parsed back into HTTP responses with ``http.client``. The frames
are Mongrel2 1.12.2's bytes: compact JSON, its header order (``mongrel2_order``), encoded by
``wire.encode.encode_request``.

Uses plain (blocking) pyzmq: it runs in the test process, never inside a worker.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tnetstring
import zmq

from m2bridge.wire.encode import encode_request
from m2bridge.wire.protocol import NOTICE_PATH

DEFAULT_SENDER = b"fake-mongrel2-7c0e21d2"

HeaderValues = Mapping[str, str | list[str]]


#: Mongrel2's own keys of a request, where it writes them (``Request_to_payload`` and
#: ``Request_to_tnetstring`` in 1.12.2's ``request.c``; the tnetstring is rendered backwards):
#: in JSON after ``PATH`` and its header hash, in a tnetstring before the hash, which comes
#: reversed. Any other key is an entry of that hash, given in JSON's (hash scan) order.
_JSON_TAIL = (
    "METHOD",
    "VERSION",
    "URI",
    "QUERY",
    "FRAGMENT",
    "PATTERN",
    "URL_SCHEME",
    "REMOTE_ADDR",
)
_TNET_HEAD = ("REMOTE_ADDR", "METHOD", "URL_SCHEME", "PATTERN", "FRAGMENT", "QUERY", "URI",
              "VERSION", "PATH")  # fmt: skip
_PROTOCOLS = ("json", "tnetstring")


def make_request_frame(
    path: str = "/",
    *,
    conn_id: int = 1,
    method: str = "GET",
    query: str | None = None,
    headers: HeaderValues | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    sender: bytes = DEFAULT_SENDER,
    protocol: str = "json",
    pattern: str = "/",
) -> bytes:
    """Build a request message byte for byte as Mongrel2 1.12.2 sends it (JSON or tnetstring).

    ``headers`` are client headers (lower-case names; a list for a repeated header), in the
    order Mongrel2's hash would list them in JSON; ``x-forwarded-for`` comes first and
    ``host`` last unless given, and a ``content-length`` is added for a non-empty body
    unless given.
    """
    client: dict[str, str | list[str]] = {"x-forwarded-for": "127.0.0.1", **(headers or {})}
    if body:
        client.setdefault("content-length", str(len(body)))
    client.setdefault("host", "localhost")
    own = {"PATH": path, "METHOD": method, "VERSION": version}
    own["URI"] = path if query is None else f"{path}?{query}"
    if query is not None:
        own["QUERY"] = query
    own.update({"PATTERN": pattern, "URL_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1"})
    return encode_message(sender, conn_id, path, {**own, **client}, body, protocol)


def make_disconnect_frame(
    conn_id: int, *, sender: bytes = DEFAULT_SENDER, protocol: str = "json"
) -> bytes:
    """Build the notice Mongrel2 sends when the client of ``conn_id`` closed its connection."""
    return make_json_frame(
        NOTICE_PATH, {"type": "disconnect"}, conn_id=conn_id, sender=sender, protocol=protocol
    )


def make_json_frame(
    path: str,
    data: object,
    *,
    conn_id: int = 1,
    headers: HeaderValues | None = None,
    sender: bytes = DEFAULT_SENDER,
    protocol: str = "json",
) -> bytes:
    """Build a ``METHOD: JSON`` message (notices on ``@*``, JSON sockets on ``@route``).

    A notice carries ``METHOD`` then ``headers``; a JSON socket message carries the keys of a
    request to that route. ``data`` is sent as compact JSON, as Mongrel2's notices are.
    """
    all_headers: dict[str, str | list[str]] = {"METHOD": "JSON", **(headers or {})}
    if path != NOTICE_PATH:
        all_headers = {"PATH": path, "x-forwarded-for": "127.0.0.1", **all_headers}
        all_headers.update({"PATTERN": path, "URL_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1"})
    body = json.dumps(data, separators=(",", ":")).encode()
    return encode_message(sender, conn_id, path, all_headers, body, protocol)


def encode_message(
    sender: bytes,
    conn_id: int,
    path: str,
    headers: HeaderValues,
    body: bytes,
    protocol: str = "json",
) -> bytes:
    """Frame one handler message as Mongrel2 does: ``SENDER CONN_ID PATH HEADERS BODY``.

    ``headers`` are put in Mongrel2's order (see ``mongrel2_order``), then encoded by
    ``wire.encode.encode_request``.

    Raises:
        ValueError: ``protocol`` is neither ``json`` nor ``tnetstring``.
        ProtocolError: a field cannot be encoded (not latin-1, or a bad sender).
    """
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol must be 'json' or 'tnetstring', not {protocol!r}")
    json_headers = protocol == "json"
    ordered = mongrel2_order(headers, json_headers=json_headers)
    return encode_request(sender, conn_id, path, ordered, body, json_headers=json_headers)


def mongrel2_order(headers: HeaderValues, *, json_headers: bool) -> dict[str, str | list[str]]:
    """``headers`` in the order Mongrel2 1.12.2 writes them for the handler's protocol.

    A message without ``PATH`` (a notice, an upload stream piece) is not a rendered request:
    Mongrel2 writes its keys in the given order in JSON and reversed in a tnetstring.
    """
    if "PATH" not in headers:
        items = list(headers.items())
        return dict(items if json_headers else reversed(items))
    hashed = [(k, v) for k, v in headers.items() if k not in _TNET_HEAD]
    if json_headers:
        tail = [(key, headers[key]) for key in _JSON_TAIL if key in headers]
        return {"PATH": headers["PATH"], **dict(hashed), **dict(tail)}
    head = [(key, headers[key]) for key in _TNET_HEAD if key in headers]
    return {**dict(head), **dict(reversed(hashed))}


@dataclass(frozen=True)
class Reply:
    """One message a handler sent back: ``SENDER LEN:IDS, BODY`` (empty body: close).

    ``control`` marks an extended reply (``SENDER LEN:X ID, ['ctl', {...}]``): ``body`` is
    then the tnetstring, and ``ctl`` its decoded dict (``{"credits": 30000}``).
    """

    sender: bytes
    conn_ids: tuple[int, ...]
    body: bytes
    control: bool = False

    @property
    def ctl(self) -> dict[str, Any]:
        """The ``ctl`` dict of an extended reply (``ValueError`` for another reply)."""
        decoded = tnetstring.loads(self.body) if self.control else None
        if not (isinstance(decoded, list) and len(decoded) == 2 and decoded[0] == b"ctl"):
            raise ValueError(f"not a ctl reply: {self.body[:80]!r}")
        return {key.decode(): value for key, value in decoded[1].items()}


def parse_reply(message: bytes) -> Reply:
    """Split a handler's reply message into its parts (``ValueError`` if malformed)."""
    sender, rest = message.split(b" ", 1)
    length, rest = rest.split(b":", 1)
    ids, tail = rest[: int(length)], rest[int(length) :]
    if not tail.startswith(b", "):
        raise ValueError(f"reply without ', ' after the ids: {message[:80]!r}")
    control = ids.startswith(b"X ")
    if control:
        ids = ids[2:]
    return Reply(sender, tuple(int(i) for i in ids.split(b" ")), tail[2:], control)


@dataclass
class HTTPResult:
    """An HTTP response parsed from reply bytes."""

    status: int
    reason: str
    version: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _UnclosableBytes(io.BytesIO):
    """http.client closes its file after the body; keep the position readable."""

    def close(self) -> None:
        pass


class _BytesSocket:
    def __init__(self, stream: io.BytesIO) -> None:
        self._stream = stream

    def makefile(self, *args: object, **kwargs: object) -> io.BytesIO:
        return self._stream


def parse_http_response(raw: bytes, method: str = "GET") -> tuple[HTTPResult, int] | None:
    """Parse the first complete HTTP response in ``raw``.

    Returns:
        The response and the number of bytes it took, or None while it is incomplete. A
        response delimited by the connection's close takes everything.
    """
    if b"\r\n\r\n" not in raw:
        return None
    stream = _UnclosableBytes(raw)
    response = http.client.HTTPResponse(_BytesSocket(stream), method=method)  # type: ignore[arg-type]
    try:
        response.begin()
        body = response.read()
    except (http.client.IncompleteRead, http.client.HTTPException, ValueError):
        return None
    result = HTTPResult(
        response.status, response.reason, response.version, response.getheaders(), body
    )
    return result, stream.tell()


@dataclass
class _Inbox:
    data: bytearray = field(default_factory=bytearray)
    messages: int = 0
    closed: bool = False


class FakeMongrel2:
    """Mongrel2's two sockets, bound on ipc:// in ``directory``, driven by a test.

    Like Mongrel2, a background thread polls the SUB all the time: a bound SUB sends its
    subscription to a newly connected publisher only when its owner polls it, and the worker
    waits for that subscription before it takes requests.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        sender: bytes = DEFAULT_SENDER,
        protocol: str = "json",
        recv_ident: bytes = b"",
    ) -> None:
        self.sender = sender
        self.protocol = protocol
        self.send_spec = f"ipc://{Path(directory) / 'm2-send.ipc'}"
        self.recv_spec = f"ipc://{Path(directory) / 'm2-recv.ipc'}"
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.bind(self.send_spec)
        self.replies: list[Reply] = []
        self._inboxes: dict[int, _Inbox] = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        bound = threading.Event()
        self._reader = threading.Thread(
            target=self._read_replies, args=(recv_ident, bound), daemon=True
        )
        self._reader.start()
        if not bound.wait(5):
            raise RuntimeError("FakeMongrel2: the SUB socket did not bind")

    def __enter__(self) -> FakeMongrel2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader, close both sockets and the context."""
        self._stop.set()
        self._reader.join(5)
        self.push.close(0)
        self.context.term()

    def _read_replies(self, recv_ident: bytes, bound: threading.Event) -> None:
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, recv_ident)
        sub.bind(self.recv_spec)
        bound.set()
        try:
            while not self._stop.is_set():
                if sub.poll(20):
                    self._record(parse_reply(sub.recv()))
        finally:
            sub.close(0)

    def _record(self, reply: Reply) -> None:
        with self._changed:
            self.replies.append(reply)
            if reply.control:
                self._changed.notify_all()
                return
            for conn_id in reply.conn_ids:
                inbox = self._inboxes.setdefault(conn_id, _Inbox())
                inbox.messages += 1
                if reply.body:
                    inbox.data += reply.body
                else:
                    inbox.closed = True
            self._changed.notify_all()

    def next_conn_id(self) -> int:
        """A connection id not used yet by this fake."""
        return next(self._ids)

    def send_frame(self, frame: bytes, timeout: float = 10.0) -> None:
        """Push one raw message (blocks until a worker's PULL is connected, up to ``timeout``)."""
        self.push.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
        try:
            self.push.send(frame)
        except zmq.Again:
            raise TimeoutError(f"no worker took a message within {timeout} s") from None

    def request(self, path: str = "/", *, conn_id: int | None = None, **kwargs: Any) -> int:
        """Send a request (``make_request_frame`` arguments); return its connection id."""
        conn_id = self.next_conn_id() if conn_id is None else conn_id
        frame = make_request_frame(
            path, conn_id=conn_id, sender=self.sender, protocol=self.protocol, **kwargs
        )
        self.send_frame(frame)
        return conn_id

    def disconnect(self, conn_id: int) -> None:
        """Send the disconnect notice of ``conn_id``."""
        self.send_frame(make_disconnect_frame(conn_id, sender=self.sender, protocol=self.protocol))

    def credits(self, conn_id: int, credits: int) -> None:
        """Send the ``download.flow_control`` notice: the client of ``conn_id`` read ``credits``."""
        headers = {"DOWNLOAD_CREDITS": str(credits)}
        frame = make_json_frame(
            NOTICE_PATH,
            {"type": "credits"},
            conn_id=conn_id,
            headers=headers,
            sender=self.sender,
            protocol=self.protocol,
        )
        self.send_frame(frame)

    def upload_chunk(self, conn_id: int, path: str, offset: int, data: bytes, done: bool) -> None:
        """Send one later piece of an ``upload.stream`` body (only ``UPLOAD_STREAM`` headers)."""
        headers: dict[str, str | list[str]] = {"UPLOAD_STREAM": str(offset)}
        if done:
            headers["UPLOAD_STREAM_DONE"] = "1"
        self.send_frame(encode_message(self.sender, conn_id, path, headers, data, self.protocol))

    def controls(self, conn_id: int) -> list[dict[str, Any]]:
        """The ``ctl`` dicts (upload.stream credits, say) the handler sent for ``conn_id``."""
        with self._changed:
            return [r.ctl for r in self.replies if r.control and conn_id in r.conn_ids]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (checked as replies arrive) holds; return whether it did."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def response(
        self, conn_id: int, *, method: str = "GET", timeout: float = 10.0, until_close: bool = False
    ) -> HTTPResult:
        """Wait for the next complete HTTP response on ``conn_id`` and consume it.

        With ``until_close`` it also waits for the close message (and a response delimited by
        the close is only complete then).

        Raises:
            TimeoutError: no complete response within ``timeout`` seconds.
        """
        parsed: list[tuple[HTTPResult, int]] = []

        def complete() -> bool:
            inbox = self._inboxes.setdefault(conn_id, _Inbox())
            if until_close and not inbox.closed:
                return False
            result = parse_http_response(bytes(inbox.data), method)
            if result is not None:
                parsed.append(result)
            return result is not None

        if not self.wait_for(complete, timeout):
            raise TimeoutError(
                f"no complete response on connection {conn_id} in {timeout} s; "
                f"got {self.pending_bytes(conn_id)[:200]!r} closed={self.is_closed(conn_id)}"
            )
        result, used = parsed[-1]
        with self._changed:
            del self._inboxes[conn_id].data[:used]
        return result

    def is_closed(self, conn_id: int) -> bool:
        """Whether the close message of ``conn_id`` has been received."""
        inbox = self._inboxes.get(conn_id)
        return inbox is not None and inbox.closed

    def wait_closed(self, conn_id: int, timeout: float = 10.0) -> bool:
        """Wait for the close message of ``conn_id``; return whether it came."""
        return self.wait_for(lambda: self.is_closed(conn_id), timeout)

    def message_count(self, conn_id: int) -> int:
        """How many reply messages (data and close) reached ``conn_id`` so far."""
        inbox = self._inboxes.get(conn_id)
        return inbox.messages if inbox else 0

    def pending_bytes(self, conn_id: int) -> bytes:
        """Reply bytes of ``conn_id`` received but not consumed by ``response``."""
        inbox = self._inboxes.get(conn_id)
        return bytes(inbox.data) if inbox else b""
