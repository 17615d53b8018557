"""What a worker does with each message Mongrel2 sends: serve it, refuse it, or ignore it.

``Dispatcher.dispatch(channel, frame)`` parses one message and routes the event:

- ``Request``: queued on its connection and served through the WSGI app, in order; with
  ``--max-in-flight`` connections already busy, a request on an idle connection is answered
  ``503`` with ``Retry-After`` at once instead (nothing queues without limit); a first request
  carrying ``DOWNLOAD_CREDITS`` opens the connection's credit window (``Credits`` notices
  refill it, see ``connection``); once a server showed it has flow control on, a request of a
  connection this worker has no window for (its first request went to another worker, or to
  this worker's predecessor) gets a full default window;
- ``UploadStarted``: remembered (no reply); ``UploadDone``: served with the temp file as
  ``wsgi.input`` only if the same connection announced the same path here first (Mongrel2, or
  the relay, sends both to one worker); any other ``done`` is refused with a logged 400;
- ``Disconnect``: the connection's queued work is dropped, its ``m2bridge.disconnected`` event
  set, its response stream stopped, and its request cancelled after ``cancel_grace``; notices
  (``Disconnect``, ``Credits``) are never answered, as a reply to a dead connection brings
  another notice, without end. Several workers on one Handler run behind the relay
  (docs/relay.md), which sends a connection's notices to the workers that hold it;
- ``WebSocketHandshake`` and ``WebSocketFrame``: handed to ``wsapp.WebSocketHub`` when the
  app has a ``websocket`` handler; otherwise a handshake gets 501 and close, a frame is
  dropped with a debug log;
- ``StreamedRequest`` (``upload.stream=1``): served at once, ``wsgi.input`` a
  ``StreamingInput`` that grants Mongrel2 credits as the app reads; ``UploadChunk`` feeds it
  (a piece of no open stream is dropped, never answered);
- ``JSONMessage``: dropped with a debug log;
- a malformed message: a warning, and 400 + close when its sender and connection id are
  readable (and it is not a notice).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from bisect import bisect_left
from collections.abc import Callable, Generator
from time import monotonic
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import gevent

from m2bridge.errors import ProtocolError
from m2bridge.wire.encode import encode_control
from m2bridge.wire.flow import DEFAULT_CREDITS, parse_credits
from m2bridge.wire.protocol import (
    Credits,
    Disconnect,
    JSONMessage,
    Request,
    StreamedRequest,
    UploadChunk,
    UploadDone,
    UploadStarted,
    WebSocketFrame,
    WebSocketHandshake,
    parse_message,
)
from m2bridge.wire.uploads import UploadTracker
from m2bridge.worker.error_reply import ErrorReply, error_page, reply_target
from m2bridge.worker.fast_path import FastPath
from m2bridge.worker.stats import DURATION_BUCKETS
from m2bridge.worker.streaming_input import StreamingInput, UploadStreams
from m2bridge.worker.wsapp import WebSocketHub, find_websocket_handler
from m2bridge.wsgi.body import declared_body, inline_body, open_upload, remove_upload
from m2bridge.wsgi.environ import DISCONNECTED_KEY, EnvironSettings, build_environ
from m2bridge.wsgi.handler import run_wsgi
from m2bridge.wsgi.response import Response, keep_alive_requested

if TYPE_CHECKING:
    from m2bridge._types import Environ, WSGIApp
    from m2bridge.config import WorkerConfig
    from m2bridge.logs import AccessLog
    from m2bridge.worker.connection import Connection, ConnectionTable
    from m2bridge.worker.sink import Sink
    from m2bridge.worker.stats import WorkerStats

log = logging.getLogger("m2bridge.worker.dispatch")

#: Seconds a client refused with 503 is asked to wait before retrying.
RETRY_AFTER = 1


class Dispatcher:
    """Routes parsed events to connections and serves requests through the WSGI app."""

    def __init__(
        self,
        app: WSGIApp,
        config: WorkerConfig,
        table: ConnectionTable,
        stats: WorkerStats,
        access_log: AccessLog | None = None,
        on_request: Callable[[], None] | None = None,
        fast: bool = True,
    ) -> None:
        """Args:
        fast: offer each message to the fast path first (``fast_path``; False: the reference
            path serves everything, as the equivalence tests compare).
        """
        self.app = app
        self.config = config
        self.table = table
        self.stats = stats
        self.access_log = access_log
        self.uploads = UploadTracker()
        self.streams = UploadStreams()
        self._on_request = on_request or (lambda: None)
        self._settings = EnvironSettings(script_name=config.script_name)
        self.websockets = WebSocketHub(find_websocket_handler(app), table, self._settings)
        self._timeout = config.timeout
        limit = config.max_in_flight or config.concurrency
        self._max_in_flight = min(limit, config.concurrency)  # the pool must never block
        self._serve_job = self._serve_request  # bound once, not per request
        self._flow_channels: set[int] = set()  # servers seen with download.flow_control on
        #: Offered every message first (None: the reference path serves everything).
        self.fast_path = (
            FastPath(self, app, table, self._settings, self._max_in_flight, self._flow_channels)
            if fast
            else None
        )
        self._fast = None if self.fast_path is None else self.fast_path.offer
        self._routes: dict[type, Callable[[Sink, Any], None]] = {
            Request: self._on_request_event,
            UploadStarted: self._on_upload_started,
            UploadDone: self._on_upload_done,
            Disconnect: self._on_disconnect,
            StreamedRequest: self._on_streamed_request,
            WebSocketHandshake: self._on_websocket,
            UploadChunk: self._on_upload_chunk,
            WebSocketFrame: self._on_websocket,
            JSONMessage: self._on_ignored,
            Credits: self._on_credits,
        }

    def dispatch(self, channel: Sink, frame: bytes) -> None:
        """Handle one message from ``channel``; never raises for bad input."""
        if self._fast is not None and self._fast(channel, frame):
            return
        try:
            event = parse_message(frame)
        except ProtocolError as exc:
            self._on_malformed(channel, frame, exc)
            return
        self._routes[type(event)](channel, event)

    def __contains__(self, key: object) -> bool:
        """Whether the connection ``(channel index, conn id)`` must stay on this worker (its
        state lives here: an open WebSocket, or the credit windows of a server with download
        flow control); the relay channel never reports those finished (``kept``)."""
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return key[0] in self._flow_channels or key in self.websockets.sockets

    def count_request(self) -> None:
        """A request was accepted (``--max-requests`` counts it)."""
        self._on_request()

    def close(self) -> None:
        """Worker exit: close open WebSockets (1001), delete unfinished upload temp files."""
        self.websockets.close_all()
        self.streams.abort_all()
        for path in self.uploads.forget_all():
            remove_upload(path, self.config.m2_chroot, self.config.upload_temp_store)

    # ------------------------------------------------------------------ routing

    def _on_request_event(self, channel: Sink, event: Request) -> None:
        if self._overloaded(channel, event):
            return
        self._on_request()
        credits = event.headers.get("DOWNLOAD_CREDITS")
        if credits is not None:
            self._open_window(channel, event.conn_id, credits)
        elif channel.index in self._flow_channels:
            self.table.ensure_window(channel.index, event.conn_id, DEFAULT_CREDITS)
        job = (self._serve_job, (event, monotonic()))
        self.table.submit(channel, event.conn_id, event.sender, job)

    def _overloaded(self, channel: Sink, event: Request) -> bool:
        """Refuse ``event`` with 503 when the in-flight bound is reached (O(1))."""
        table = self.table
        if len(table) < self._max_in_flight or table.has_work(channel.index, event.conn_id):
            return False
        gevent.sleep(0)  # a burst of quick requests: let the ready ones finish first
        if len(table) < self._max_in_flight:
            return False
        self.stats.rejected += 1
        self.stats.served += 1
        log.debug("connection %d: %d requests in flight: 503", event.conn_id, len(table))
        reply = ErrorReply(503, event.method, event.version, RETRY_AFTER)
        table.refuse(channel, event.conn_id, event.sender, error_page(reply))
        return True

    def _open_window(self, channel: Sink, conn_id: int, value: object) -> None:
        credits = parse_credits(value)
        if credits is None:
            log.warning("connection %d: ignored bad DOWNLOAD_CREDITS %r", conn_id, value)
            return
        self.table.open_window(channel.index, conn_id, credits)
        self._flow_channels.add(channel.index)
        channel.kept = self  # credit windows live here: its connections are never let go

    def _on_credits(self, channel: Sink, event: Credits) -> None:
        if not self.table.credit(channel.index, event.conn_id, event.credits):
            log.debug("connection %d: credits for an unknown connection", event.conn_id)

    def _on_upload_started(self, channel: Sink, event: UploadStarted) -> None:
        if self.uploads.start((channel.index, event.conn_id), event):
            log.debug("connection %d: upload started in %s", event.conn_id, event.upload_path)
            return
        log.warning(
            "connection %d: refused x-mongrel2-upload-start %r that Mongrel2 did not send",
            event.conn_id,
            event.upload_path,
        )
        self._refuse(channel, event, 400)

    def _on_upload_done(self, channel: Sink, event: UploadDone) -> None:
        key = (channel.index, event.conn_id)
        if self.uploads.claim(key, event):
            self._accept_upload(channel, event)
        else:
            self._refuse_upload(channel, event)

    def _accept_upload(self, channel: Sink, event: UploadDone) -> None:
        if self._overloaded(channel, event):
            remove_upload(event.upload_path, self.config.m2_chroot, self.config.upload_temp_store)
            return
        self._on_request()
        job = (self._serve_upload, (event, monotonic()))
        self.table.submit(channel, event.conn_id, event.sender, job)

    def _refuse_upload(self, channel: Sink, event: UploadDone) -> None:
        log.warning(
            "connection %d: refused forged x-mongrel2-upload-done %r (no matching start on "
            "this connection; several workers on one Handler need the relay)",
            event.conn_id,
            event.upload_path,
        )
        self._refuse(channel, event, 400)

    def _on_streamed_request(self, channel: Sink, event: StreamedRequest) -> None:
        if self._overloaded(channel, event):
            return
        self._on_request()
        sender = self.table.reply_sender(channel, event.sender)

        def grant(credits: int) -> None:
            channel.send(encode_control(sender, event.conn_id, {"credits": credits}))

        body = self.streams.open((channel.index, event.conn_id), event.body, grant)
        job = (self._serve_stream, (event, body, monotonic()))
        self.table.submit(channel, event.conn_id, event.sender, job)

    def _on_upload_chunk(self, channel: Sink, event: UploadChunk) -> None:
        key = (channel.index, event.conn_id)
        if not self.streams.feed(key, event.offset, event.data, event.done):
            log.debug("connection %d: upload stream piece of no request: dropped", event.conn_id)

    def _on_disconnect(self, channel: Sink, event: Disconnect) -> None:
        self.streams.abort((channel.index, event.conn_id))
        self.table.disconnect(channel.index, event.conn_id, self.config.cancel_grace)
        self.websockets.disconnected(channel, event.conn_id)
        path = self.uploads.forget((channel.index, event.conn_id))
        if path is not None:
            remove_upload(path, self.config.m2_chroot, self.config.upload_temp_store)

    def _on_unsupported(self, channel: Sink, event: Request) -> None:
        log.info("connection %d: %s not supported yet: 501", event.conn_id, type(event).__name__)
        self._refuse(channel, event, 501)

    def _on_websocket(self, channel: Sink, event: WebSocketHandshake | WebSocketFrame) -> None:
        if self.websockets.enabled:
            channel.kept = self  # an open WebSocket is never let go
            self.websockets.handle(channel, event)
        elif isinstance(event, WebSocketHandshake):
            self._on_unsupported(channel, event)
        else:
            self._on_ignored(channel, event)

    def _on_ignored(self, channel: Sink, event: object) -> None:
        log.debug("ignored %s", type(event).__name__)

    def _on_malformed(self, channel: Sink, frame: bytes, exc: ProtocolError) -> None:
        target = reply_target(frame)
        log.warning("malformed message from Mongrel2 at %s: %s", channel.recv_spec, exc)
        if target is not None:
            reply = ErrorReply(exc.error_status_hint)
            self.table.submit(channel, target[1], target[0], (self._send_error, reply))

    def _refuse(self, channel: Sink, event: Request | UploadChunk, status: int) -> None:
        if isinstance(event, Request):
            reply = ErrorReply(status, event.method, event.version)
        else:
            reply = ErrorReply(status)
        self.table.submit(channel, event.conn_id, event.sender, (self._send_error, reply))

    # ------------------------------------------------------------------ jobs (one connection)

    def _send_error(self, conn: Connection, reply: ErrorReply) -> None:
        if not conn.closed:
            self.stats.served += 1
            conn.respond(error_page(reply), close=True)

    def _serve_request(self, conn: Connection, job: tuple[Request, float]) -> None:
        request, received = job
        if not conn.closed:
            self._run_app(conn, request, inline_body(request), received)

    def _serve_stream(
        self, conn: Connection, job: tuple[StreamedRequest, StreamingInput, float]
    ) -> None:
        event, body, received = job
        try:
            if conn.closed:
                return
            # The body arrives de-chunked: a chunked one simply ends (wsgi.input_terminated).
            headers = {k: v for k, v in event.headers.items() if k != "transfer-encoding"}
            request = dataclasses.replace(event, headers=headers)
            self._run_app(conn, request, cast("BinaryIO", body), received)
            if not body.done and not conn.closed:
                log.info("connection %d: answered before its body was in: closed", conn.conn_id)
                conn.close()  # else Mongrel2 waits for credits for the rest, forever
        finally:
            self.streams.end((conn.channel.index, conn.conn_id), body)

    def _serve_upload(self, conn: Connection, job: tuple[UploadDone, float]) -> None:
        event, received = job
        chroot, store = self.config.m2_chroot, self.config.upload_temp_store
        try:
            if conn.closed:
                return
            try:
                stream, size = open_upload(event.upload_path, chroot, store)
            except ProtocolError as exc:
                log.warning("connection %d: upload refused: %s", conn.conn_id, exc)
                self._send_error(conn, ErrorReply(exc.error_status_hint, event.method))
                return
            with stream:
                chunked = "transfer-encoding" in event.headers
                try:
                    body, length = declared_body(
                        stream, size, None if chunked else event.header("content-length")
                    )
                except ProtocolError as exc:
                    log.warning("connection %d: upload refused: %s", conn.conn_id, exc)
                    self._send_error(conn, ErrorReply(exc.error_status_hint, event.method))
                    return
                # A de-chunked body's file size is the only framing left; bytes past a declared
                # length are requests pipelined behind it, which Mongrel2 will never parse: the
                # connection is closed after this answer so the client resends them.
                headers = {
                    key: value for key, value in event.headers.items() if key != "transfer-encoding"
                }
                headers["content-length"] = str(length)
                request = dataclasses.replace(event, headers=headers)
                if size > length:
                    log.warning(
                        "connection %d: %d bytes after the upload's declared body (requests "
                        "pipelined behind it, lost inside Mongrel2): closing after the answer",
                        conn.conn_id,
                        size - length,
                    )
                self._run_app(conn, request, body, received, keep_alive=size == length)
        finally:
            remove_upload(event.upload_path, chroot, store)

    def _run_app(
        self,
        conn: Connection,
        request: Request,
        body: BinaryIO,
        received: float,
        keep_alive: bool = True,
    ) -> None:
        version = request.version
        keep_alive = keep_alive and keep_alive_requested(version, request.header("connection"))
        response = Response(request.method, version, keep_alive)
        environ = None
        status: int | None = None
        started, timer = self.begin_request(received)
        try:
            environ = build_environ(request, body, self._settings, sys.stderr)
            environ[DISCONNECTED_KEY] = conn.disconnected
            status = self.send_pieces(conn, run_wsgi(self.app, environ, response), response)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            status = self.timed_out(conn, environ, response.headers_sent)
        finally:
            self.end_request(timer, started, environ, status, response.body_bytes, received)

    # ------------------------------------------------------------------ what every request shares

    def begin_request(self, received: float | None) -> tuple[float, gevent.Timeout | None]:
        """A request received at ``received`` (monotonic; None: just now) starts running:
        count it in flight and its queue time; its start time and ``--timeout``."""
        stats = self.stats
        stats.in_flight += 1
        timer = gevent.Timeout.start_new(self._timeout) if self._timeout > 0 else None
        started = monotonic()
        waited = 0.0 if received is None else started - received
        # Histogram.observe, inlined (it runs per request)
        queue = stats.queue_time
        queue.counts[bisect_left(DURATION_BUCKETS, waited)] += 1
        queue.sum += waited
        return started, timer

    def send_pieces(
        self, conn: Connection, pieces: Generator[bytes, None, None], response: Response
    ) -> int | None:
        """Send what ``run_wsgi`` (or ``finish_wsgi``) yields; the status, None if cut off."""
        try:
            for piece in pieces:
                conn.write(piece)
                if conn.closed:  # the client left (or we gave it up): stop the stream
                    break
        finally:  # a timeout, kill or disconnect mid-write runs the app's close() at once
            pieces.close()
        conn.end(response.should_close)
        return response.status_code if response.finished else None

    def end_request(
        self,
        timer: gevent.Timeout | None,
        started: float,
        environ: Environ | None,
        status: int | None,
        body_bytes: int,
        received: float | None = None,
    ) -> None:
        """A request is over: counters, and its access log line (whose queue time is from
        ``received``, as in ``begin_request``; None: no wait)."""
        if timer is not None:
            timer.close()
        stats = self.stats
        stats.in_flight -= 1
        stats.served += 1
        if status is None or status >= 500:
            stats.errors += 1
        duration = monotonic() - started
        app = stats.app_time  # Histogram.observe, inlined (it runs per request)
        app.counts[bisect_left(DURATION_BUCKETS, duration)] += 1
        app.sum += duration
        if self.access_log is not None and environ is not None:
            queue = 0.0 if received is None else started - received
            self.access_log.log(environ, status, body_bytes, duration, queue)

    def timed_out(
        self, conn: Connection, environ: Environ | None, headers_sent: bool
    ) -> int | None:
        """``--timeout`` cancelled the request: 504 if nothing was sent yet, else close."""
        self.stats.timed_out += 1
        environ = environ or {}
        log.warning(
            "connection %d: %s %s ran past --timeout %ss; cancelled",
            conn.conn_id,
            environ.get("REQUEST_METHOD"),
            environ.get("RAW_URI"),
            self._timeout,
        )
        if headers_sent or conn.closed:
            conn.close()
            return None
        method, version = environ.get("REQUEST_METHOD", ""), environ.get("SERVER_PROTOCOL", "")
        conn.respond(error_page(ErrorReply(504, method, version)), close=True)
        return 504
