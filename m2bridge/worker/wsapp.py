"""WebSocket apps served by a worker: the handler hooks, the ``WebSocket`` handle, broadcast.

A module's ``app`` is a WSGI app for plain HTTP; when it carries a ``websocket`` attribute (a
``WebSocketHandler``), upgrades on the same route go to that handler (``with_websocket``
builds such an app). Otherwise a handshake is refused with 501 as before.

The ``WebSocketHub`` (one per worker, owned by the dispatcher) turns Mongrel2's
``WEBSOCKET_HANDSHAKE`` and ``WEBSOCKET`` events into hook calls. Hooks of one connection run
in order, as jobs of its ``connection.Connection`` in the worker's pool; every frame leaves
through a per-socket ``Connection`` writer, so WebSocket sends are merged and paced like HTTP
responses (Mongrel2 drops a connection with more than 16 messages queued). Mongrel2 answers
nothing itself: the hub sends the 101, answers each ping with a pong and each close with a
close, then closes the connection (the empty reply).

Broadcast (``broadcast``) sends one frame to many sockets in ``ceil(n / 128)`` messages
(``encode.encode_broadcast``), paced per hub like one connection's writes.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import gevent

from m2bridge.errors import ProtocolError
from m2bridge.wire.encode import encode_broadcast
from m2bridge.wire.protocol import WebSocketFrame, WebSocketHandshake
from m2bridge.wire.websocket import (
    CLOSE_ABNORMAL,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    decode_text,
    encode_close_frame,
    encode_frame,
    encode_message,
    handshake_response,
    is_sendable_close_code,
    parse_close_payload,
)
from m2bridge.worker.connection import Connection
from m2bridge.worker.pacing import BURST, MERGE_INTERVAL, TokenBucket
from m2bridge.wsgi.environ import EnvironSettings, build_environ

if TYPE_CHECKING:
    from m2bridge._types import Environ, StartResponse, WSGIApp
    from m2bridge.worker.connection import ConnectionTable
    from m2bridge.worker.sink import Sink

log = logging.getLogger("m2bridge.worker.wsapp")

#: Seconds a server-initiated close waits for the client's close frame before closing anyway.
CLOSE_TIMEOUT = 5.0


class WebSocketHandler:
    """Subclass and override the hooks you need; each runs in its connection's greenlet."""

    def on_connect(self, ws: WebSocket) -> None:
        """The 101 response has been sent: ``ws`` is open."""

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        """A whole message arrived: ``str`` for a text message, ``bytes`` for a binary one."""

    def on_pong(self, ws: WebSocket, payload: bytes) -> None:
        """The client answered a ``ws.ping()``."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """``ws`` is closed: a close handshake (its code), or 1006 when the client vanished."""


class WebSocketWSGI:
    """A WSGI app for plain HTTP that serves WebSocket upgrades with ``websocket``."""

    def __init__(self, wsgi: WSGIApp, websocket: WebSocketHandler) -> None:
        self.wsgi = wsgi
        self.websocket = websocket

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)


def with_websocket(wsgi: WSGIApp, websocket: WebSocketHandler) -> WebSocketWSGI:
    """``wsgi`` for HTTP requests, ``websocket`` for upgrades on the same route."""
    return WebSocketWSGI(wsgi, websocket)


def find_websocket_handler(app: object) -> WebSocketHandler | None:
    """The app's ``websocket`` attribute when it is a ``WebSocketHandler``, else None."""
    handler = getattr(app, "websocket", None)
    return handler if isinstance(handler, WebSocketHandler) else None


class WebSocket:
    """One open WebSocket connection; safe to use from any greenlet of the worker.

    Attributes:
        conn_id: Mongrel2's connection id.
        environ: the WSGI environ of the handshake request (path, query, headers).
        closed: nothing more can be sent (closed by either side, or the client vanished).
        close_sent: this side sent its close frame and waits for the client's.
    """

    def __init__(self, hub: WebSocketHub, writer: Connection, environ: Environ) -> None:
        self.conn_id = writer.conn_id
        self.environ = environ
        self.closed = False
        self.close_sent = False
        self.hub = hub
        self.writer = writer
        self._close_timer: gevent.Greenlet[..., Any] | None = None

    def __repr__(self) -> str:
        return f"<WebSocket {self.conn_id} closed={self.closed}>"

    @property
    def channel(self) -> Sink:
        return self.writer.channel

    @property
    def open(self) -> bool:
        """Messages can still be sent (not closed, no close frame sent)."""
        return not self.closed and not self.close_sent

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message; ignored once closing."""
        frame = encode_message(message)
        if self.open:
            self.writer.write(frame)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (at most 125 bytes); the client's pong reaches ``on_pong``."""
        frame = encode_frame(OP_PING, payload)
        if self.open:
            self.writer.write(frame)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Start the close handshake: send a close frame, then close the connection when the
        client answers (or after ``CLOSE_TIMEOUT``). ``on_close`` runs then."""
        frame = encode_close_frame(code, reason)
        if not self.open:
            return
        self.close_sent = True
        self.writer.write(frame)
        self.writer.end(close=False)
        self._close_timer = gevent.spawn_later(CLOSE_TIMEOUT, self.hub.expire, self)

    def _terminate(self) -> None:
        """Close the TCP connection (the empty reply) and stop the close timer."""
        self.closed = True
        if self._close_timer is not None:
            self._close_timer.kill(block=False)
        self.writer.end(close=True)


class Broadcaster:
    """Sends one payload to many connection ids of one channel, paced like one connection.

    Each call is one message per target (split in ``MAX_TARGETS`` batches of disjoint ids), so
    it takes one token of a bucket of ``BURST`` refilled every ``MERGE_INTERVAL``: a burst of
    broadcasts waits instead of filling the targets' 16-message queues in Mongrel2.
    """

    def __init__(self) -> None:
        self._bucket = TokenBucket(BURST, MERGE_INTERVAL)

    def send(self, channel: Sink, sender: bytes, conn_ids: Iterable[int], data: bytes) -> int:
        """Deliver ``data`` to ``conn_ids``; return how many messages it took."""
        messages = encode_broadcast(sender, conn_ids, data)
        if messages:
            self._take_token()
        for message in messages:
            channel.send(message)
        return len(messages)

    def _take_token(self) -> None:
        while not self._bucket.take():
            gevent.sleep(self._bucket.wait_time())


def broadcast(sockets: Iterable[WebSocket], message: str | bytes) -> int:
    """Send ``message`` to every open socket in ``sockets`` with as few messages as possible.

    Bytes a socket's writer still holds leave first, so each client sees its messages in the
    order they were sent. Returns the number of sockets the message went to.
    """
    frame = encode_message(message)
    groups: dict[tuple[WebSocketHub, Sink, bytes], dict[WebSocket, None]] = {}
    for ws in sockets:  # a dict per group: ordered, and each socket once
        if ws.open:
            groups.setdefault((ws.hub, ws.channel, ws.writer.sender), {})[ws] = None
    for (hub, channel, sender), members in groups.items():
        for ws in members:
            ws.writer.end(close=False)
        hub.broadcaster.send(channel, sender, [ws.conn_id for ws in members], frame)
    return sum(len(members) for members in groups.values())


Job = tuple[Callable[[Connection, Any], None], Any]


class WebSocketHub:
    """The WebSocket connections of one worker and what to do with each event."""

    def __init__(
        self, handler: WebSocketHandler | None, table: ConnectionTable, settings: EnvironSettings
    ) -> None:
        self.handler = handler
        self.table = table
        self.settings = settings
        self.broadcaster = Broadcaster()
        self.sockets: dict[tuple[int, int], WebSocket] = {}

    @property
    def enabled(self) -> bool:
        """Whether the app serves WebSockets (else handshakes are the caller's to refuse)."""
        return self.handler is not None

    def handle(self, channel: Sink, event: WebSocketHandshake | WebSocketFrame) -> None:
        """Queue a handshake or a frame on its connection (served in order)."""
        job: Job = (
            (self._open, event) if isinstance(event, WebSocketHandshake) else (self._frame, event)
        )
        self.table.submit(channel, event.conn_id, event.sender, job)

    def disconnected(self, channel: Sink, conn_id: int) -> bool:
        """Mongrel2's disconnect notice: forget the socket, run ``on_close`` (code 1006).

        Returns:
            Whether ``conn_id`` was an open WebSocket here.
        """
        ws = self.sockets.pop((channel.index, conn_id), None)
        if ws is None:
            return False
        ws.closed = True
        ws.writer.closed = True  # the client is gone: not even the close message
        ws._terminate()
        self.table.submit(
            channel, conn_id, ws.writer.sender, (self._closed, (ws, CLOSE_ABNORMAL, ""))
        )
        return True

    def expire(self, ws: WebSocket) -> None:
        """A server-initiated close got no answer in time: close the connection."""
        if not ws.closed:
            log.info("websocket %d: no close frame within %ss", ws.conn_id, CLOSE_TIMEOUT)
            job: Job = (self._finish_job, (ws, CLOSE_ABNORMAL, "close timeout"))
            self.table.submit(ws.channel, ws.conn_id, ws.writer.sender, job)

    def close_all(self, code: int = 1001, reason: str = "server going away") -> None:
        """Worker exit: send every open socket a close frame and close its connection."""
        for ws in list(self.sockets.values()):
            if ws.open:
                ws.writer.write(encode_close_frame(code, reason))
            ws._terminate()
        self.sockets.clear()

    # ------------------------------------------------------------------ jobs

    def _open(self, conn: Connection, event: WebSocketHandshake) -> None:
        if conn.closed or self.handler is None:
            return
        try:
            response = handshake_response(event.body.decode("latin-1"))
        except ProtocolError as exc:
            log.warning("websocket %d: bad handshake from Mongrel2: %s", conn.conn_id, exc)
            conn.close()
            return
        ws = self._register(conn, event)
        ws.writer.write(response)
        log.debug("websocket %d: open on %s", ws.conn_id, event.path)
        self._call(ws, self.handler.on_connect, ws)

    def _register(
        self, conn: Connection, request: WebSocketHandshake | WebSocketFrame
    ) -> WebSocket:
        writer = Connection(self.table, conn.channel, conn.conn_id, conn.sender)
        environ = build_environ(request, io.BytesIO(), self.settings, sys.stderr)
        environ["REQUEST_METHOD"] = "GET"
        ws = WebSocket(self, writer, environ)
        self.sockets[(conn.channel.index, conn.conn_id)] = ws
        return ws

    def _frame(self, conn: Connection, event: WebSocketFrame) -> None:
        ws = self.sockets.get((conn.channel.index, conn.conn_id))
        if ws is None:
            ws = self._adopt(conn, event)
            if ws is None:
                return
        if ws.closed:
            return
        opcode = event.opcode
        if opcode == OP_CLOSE:
            self._on_close_frame(ws, event.body)
        elif opcode == OP_PING:
            self._on_ping(ws, event.body)
        elif opcode == OP_PONG:
            self._call(ws, self._hooks.on_pong, ws, event.body)
        elif opcode in (OP_TEXT, OP_BINARY):
            self._on_data(ws, opcode, event.body)
        else:
            self._fail(ws, CLOSE_PROTOCOL_ERROR, f"unexpected opcode {opcode:#x}")

    def _adopt(self, conn: Connection, event: WebSocketFrame) -> WebSocket | None:
        """A frame of a connection whose handshake this worker never saw (another worker got
        it, or this worker restarted): serve it from now on, or close it if it was closing."""
        if conn.closed or self.handler is None:
            return None
        if event.opcode == OP_CLOSE:
            conn.write(encode_close_frame(CLOSE_NORMAL))
            conn.end(close=True)
            return None
        log.info("websocket %d: adopted (handshake seen elsewhere)", conn.conn_id)
        ws = self._register(conn, event)
        self._call(ws, self.handler.on_connect, ws)
        return ws

    @property
    def _hooks(self) -> WebSocketHandler:
        assert self.handler is not None  # jobs are only queued when a handler exists
        return self.handler

    def _on_data(self, ws: WebSocket, opcode: int, payload: bytes) -> None:
        if not ws.open:
            return  # RFC 6455 5.5.1: data after our close frame may be dropped
        message: str | bytes = payload
        if opcode == OP_TEXT:
            try:
                message = decode_text(payload)
            except ProtocolError as exc:
                self._fail(ws, CLOSE_INVALID_DATA, str(exc))
                return
        self._call(ws, self._hooks.on_message, ws, message)

    def _on_ping(self, ws: WebSocket, payload: bytes) -> None:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            self._fail(ws, CLOSE_PROTOCOL_ERROR, "ping payload over 125 bytes")
        elif ws.open:
            ws.writer.write(encode_frame(OP_PONG, payload))

    def _on_close_frame(self, ws: WebSocket, payload: bytes) -> None:
        try:
            code, reason = parse_close_payload(payload)
        except ProtocolError as exc:
            log.info("websocket %d: %s", ws.conn_id, exc)
            code, reason = CLOSE_PROTOCOL_ERROR, ""
        if ws.open:  # the client started the close: answer it with its code
            answer = code if is_sendable_close_code(code) else CLOSE_NORMAL
            ws.writer.write(encode_close_frame(answer))
        self._finish(ws, code, reason)

    def _fail(self, ws: WebSocket, code: int, why: str) -> None:
        log.warning("websocket %d: closing with %d: %s", ws.conn_id, code, why)
        if ws.open:
            ws.writer.write(encode_close_frame(code))
        self._finish(ws, code, why)

    def _finish(self, ws: WebSocket, code: int, reason: str) -> None:
        self.sockets.pop((ws.channel.index, ws.conn_id), None)
        ws._terminate()
        self._call(ws, self._hooks.on_close, ws, code, reason)

    def _finish_job(self, conn: Connection, arg: tuple[WebSocket, int, str]) -> None:
        ws, code, reason = arg
        if not ws.closed:
            self._finish(ws, code, reason)

    def _closed(self, conn: Connection, arg: tuple[WebSocket, int, str]) -> None:
        ws, code, reason = arg
        self._call(ws, self._hooks.on_close, ws, code, reason)

    def _call(self, ws: WebSocket, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:
            log.exception("websocket %d: %s raised", ws.conn_id, hook.__name__)
            if hook.__name__ != "on_close" and not ws.closed:
                self._fail(ws, CLOSE_INTERNAL_ERROR, f"{hook.__name__} raised")
