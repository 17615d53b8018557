"""The worker's fast path: a plain request on an idle connection, served in the fewest steps.

``Dispatcher.dispatch`` offers every message here first. ``FastPath.offer`` takes it when
``wsgi.fast_environ`` parses it (a complete request, nothing special) and its connection has
no work in flight and no credit window, under ``--max-in-flight``; anything else goes on to the
reference path (``parse_message``, the routed events, ``run_wsgi``), which stays the judge of
every unusual case and every error. A request taken here:

- is parsed straight into its environ (no ``Request`` object), counted for ``--max-requests``
  and queued on its ``Connection`` like any request, so pipelining, disconnects (cancellation
  after ``--cancel-grace``) and the in-flight bound work the same;
- runs the app with ``fast_response.SimpleStart`` as ``start_response``: a list or tuple
  result with a plain status leaves as one reply message rendered in one step from a cached
  head; anything else (a generator, ``write``, an error, HEAD...) continues through
  ``handler.finish_wsgi`` with the reference ``Response``;
- keeps ``--timeout`` (504), the counters and the access log (``Dispatcher``'s request
  bookkeeping, shared with the reference path);
- runs inline, in the greenlet that received it, when the worker allows (``Inline``: not
  while it drains): no hand-off to a pool greenlet. A hub callback scheduled before the call
  fires only if the app blocks, and then hands the receiving to another greenlet (a parked one
  of the pool) while this one waits for the app; it is stopped unfired when the app returns
  first. The worker's drain waits for (and at its timeout kills) greenlets running an inline
  request like any pool greenlet.

tests/component/worker/test_fast_path.py runs both paths over a corpus of requests and apps and
compares every reply byte and environ.
"""

from __future__ import annotations

import sys
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

import gevent

from m2bridge.wsgi.environ import DISCONNECTED_KEY
from m2bridge.wsgi.fast_environ import FastParser
from m2bridge.wsgi.fast_response import SimpleStart
from m2bridge.wsgi.handler import failed_wsgi, finish_wsgi
from m2bridge.wsgi.response import keep_alive_requested

if TYPE_CHECKING:
    from m2bridge._types import Environ, WSGIApp
    from m2bridge.worker.connection import Connection, ConnectionTable
    from m2bridge.worker.dispatch import Dispatcher
    from m2bridge.worker.sink import Sink
    from m2bridge.wsgi.environ import EnvironSettings


class Inline(Protocol):
    """What running apps inline needs from the worker (``zmq_worker.Worker``)."""

    #: The greenlets running an inline request now (the worker's drain waits for them).
    running: set[Any]

    def allowed(self) -> bool:
        """Whether a request may run inline now (not while the worker drains)."""
        ...

    def blocked(self, channel: Sink) -> None:
        """The receiving greenlet of ``channel`` blocked inside an app: hand receiving over."""
        ...


class FastPath:
    """Takes the plain requests of one worker's ``Dispatcher`` (see the module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        app: WSGIApp,
        table: ConnectionTable,
        settings: EnvironSettings,
        max_in_flight: int,
        flow_channels: set[int],
    ) -> None:
        """Args:
        flow_channels: the dispatcher's set of channels seen with ``download.flow_control``.
        """
        self._dispatcher = dispatcher
        self._app = app
        self._table = table
        self._parse = FastParser(settings).parse
        self._max_in_flight = max_in_flight
        self._flow_channels = flow_channels
        self._serve_job = self._serve  # bound once, not per request
        self._loop = gevent.get_hub().loop
        #: Set by the worker: run the app in the receiving greenlet (see ``Inline``).
        self.inline: Inline | None = None

    def offer(self, channel: Sink, frame: bytes) -> bool:
        """Serve ``frame`` if it is a plain request on an idle connection; False otherwise."""
        parsed = self._parse(frame, sys.stderr)
        if parsed is None:
            return False
        sender, conn_id, environ = parsed
        table = self._table
        index = channel.index
        if index in self._flow_channels or not table.is_idle(index, conn_id, self._max_in_flight):
            return False
        self._dispatcher.count_request()
        conn = table.open(channel, conn_id, sender)
        inline = self.inline
        if inline is None or not inline.allowed():
            conn.jobs.append((self._serve_job, (environ, monotonic())))
            table.start(conn)
            return True
        conn.jobs.append((self._serve_job, (environ, None)))  # runs now: no queue time
        # Inline: the app runs here, in the receiving greenlet. Should it block, the hub runs
        # this callback first, which hands the receiving to another greenlet meanwhile.
        runner = gevent.getcurrent()
        conn.greenlet = runner  # type: ignore[assignment]  # a pool greenlet, or a receiver
        watch = self._loop.run_callback(inline.blocked, channel)
        inline.running.add(runner)
        try:
            conn.run()  # this job, then any pipelined behind it meanwhile
        finally:
            watch.stop()
            inline.running.discard(runner)
        return True

    def _serve(self, conn: Connection, job: tuple[Environ, float | None]) -> None:
        """The job of one request taken here (runs in its connection's greenlet)."""
        if conn.closed:
            return
        environ, received = job
        dispatcher = self._dispatcher
        method = environ["REQUEST_METHOD"]
        version = environ["SERVER_PROTOCOL"]
        connection = environ.get("HTTP_CONNECTION")
        if connection is None:  # the usual case, decided inline
            keep_alive = version != "HTTP/1.0"
        else:
            keep_alive = keep_alive_requested(version, connection)
        start = SimpleStart(method, version, keep_alive)
        status: int | None = None
        body_bytes = 0
        sent = False
        started, timer = dispatcher.begin_request(received)
        try:
            environ[DISCONNECTED_KEY] = conn.disconnected
            try:
                result = self._app(environ, start)
            except Exception:
                pieces = failed_wsgi(environ, start.to_response())
            else:
                reply = start.reply(result, conn.sender, conn.conn_id)
                if reply is not None:
                    message, close, status, body_bytes = reply
                    sent = True
                    conn.send_whole(message, close)
                    return
                pieces = finish_wsgi(result, environ, start.to_response())
            status = dispatcher.send_pieces(conn, pieces, start.to_response())
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            response = start.response
            headers_sent = sent or (response is not None and response.headers_sent)
            status = dispatcher.timed_out(conn, environ, headers_sent)
        finally:
            if start.response is not None:
                body_bytes = start.response.body_bytes
            dispatcher.end_request(timer, started, environ, status, body_bytes, received)
