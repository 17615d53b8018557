"""One Mongrel2 connection id: its requests served in order by one greenlet, its replies merged.

Two Mongrel2 facts shape this module (MONGREL2.md 2.2 and 3.3):

- Pipelined requests share one connection id and Mongrel2 writes replies in the order it gets
  them, so the jobs of one connection run one after another in a single greenlet.
- More than 16 messages queued for one connection make Mongrel2 drop it silently. Writes are
  therefore rate-limited per connection by a token bucket (``pacing``): a burst of ``BURST``
  messages leaves at once (a whole small response is one message anyway), then at most one
  message per ``MERGE_INTERVAL``; whatever the application produced in between leaves merged
  into the next message. A flusher greenlet sends held-back bytes when the application blocks
  meanwhile.

A ``Connection`` lives while it has work: it is created for the first job and forgotten when
its queue is empty, so idle keep-alive connections cost nothing, and a keep-alive client that
sends its next request after reading the last response starts with a full bucket (its Mongrel2
queue is empty by then): only streams and pipelined responses are ever paced.

Measured through the real Mongrel2 1.12.2 on 2 cores (``/stream`` yielding to the hub between
10,000 tiny chunks, so every chunk could be its own message): burst 8 / 2 ms lost the
connection in 4 of 10 runs, burst 8 / 5 ms in 1 of 10, burst 4 / 5 ms in 0 of 10, then 0 of 12
with 4 such streams at once and 0 of 40 with 8 concurrent non-yielding 10,000-chunk streams.
A slow *reader* can still fill Mongrel2's queue: without ``download.flow_control`` credits there
is no signal of what the client consumed.

With ``download.flow_control`` (the connection's first request carried ``DOWNLOAD_CREDITS``)
the table keeps a ``flow.CreditWindow`` per connection for as long as the client is connected,
and a connection sends each write at once, in pieces that fit the credits Mongrel2 returned:
the writing greenlet waits for credit notices, so a slow reader slows the application down
instead of making anyone buffer the response. Pacing by messages is then unnecessary (Mongrel2
counts bytes, not messages).

Spawning a greenlet costs about ten times as much as handing work to a parked one, so a
pool greenlet whose connection is done parks in the table and serves the next new connection
(``ConnectionTable.release_idle`` lets them exit when the worker drains).

When the client goes away, ``cancel`` sets the ``disconnected`` event (the environ's
``m2bridge.disconnected``), drops what is held back and never sends to that id again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool

from m2bridge.wire.encode import encode_close, encode_reply
from m2bridge.wire.flow import CreditWindow
from m2bridge.worker.pacing import BURST, MERGE_INTERVAL, TokenBucket
from m2bridge.worker.sink import Sink

log = logging.getLogger("m2bridge.worker.connection")

#: Seconds a flow-controlled write waits for credits before giving the client up (Mongrel2's
#: own reaper drops a connection that reads nothing for about 128 s).
CREDIT_STALL_TIMEOUT = 130.0


#: A unit of work of one connection: ``func(connection, arg)``; it must not raise.
Job = tuple[Callable[["Connection", Any], None], Any]


class ClientGone(gevent.GreenletExit):
    """Thrown into a connection's greenlet when its client left and the grace period ended."""


class Connection:
    """The queued jobs and the reply stream of one connection id on one channel.

    Attributes:
        conn_id: Mongrel2's connection id.
        channel: where replies go (the channel the requests came from).
        sender: the identity at the start of every reply.
        closed: no more bytes may go to this client (we closed it, or it went away).
    """

    __slots__ = (
        "_bucket",
        "_credited",
        "_disconnected",
        "_flusher",
        "_pending",
        "_running",
        "_sending",
        "_table",
        "_whole_at",
        "channel",
        "closed",
        "conn_id",
        "greenlet",
        "jobs",
        "last_seq",
        "sender",
        "window",
    )

    def __init__(self, table: ConnectionTable, channel: Sink, conn_id: int, sender: bytes) -> None:
        self.conn_id = conn_id
        self.channel = channel
        #: The channel's ``read_seq`` when the last job was queued: the number of the last
        #: message of this connection that this worker read.
        self.last_seq = channel.read_seq
        self.sender = sender
        self.closed = False
        self.jobs: deque[Job] = deque()
        self.greenlet: gevent.Greenlet[[], None] | None = None
        self._table = table
        self._pending: list[bytes] = []
        self._running = False
        self._sending = False
        self._flusher: gevent.Greenlet[[], None] | None = None
        self._bucket: TokenBucket | None = None  # created on first use (``_tokens``)
        self._whole_at = 0.0  # when ``send_whole`` spent a token before the bucket existed
        self._disconnected: Event | None = None
        self._credited: Event | None = None
        self.window: CreditWindow | None = None

    @property
    def disconnected(self) -> Event:
        """Set when Mongrel2 said the client went away (created on first use)."""
        if self._disconnected is None:
            self._disconnected = Event()
        return self._disconnected

    # ------------------------------------------------------------------ jobs

    def run(self) -> None:
        """Run queued jobs in order until none is left (the body of this connection's greenlet)."""
        self._running = True
        try:
            while self.jobs:
                func, arg = self.jobs.popleft()
                func(self, arg)
        except ClientGone:
            log.debug("connection %d: request cancelled, client gone", self.conn_id)
        except gevent.GreenletExit:
            self.close()  # the worker is shutting down mid-request: do not leave the client hanging
            raise
        except (Exception, gevent.Timeout):  # a bug: ours, or a Timeout the app let escape
            log.exception("connection %d: request failed outside the application", self.conn_id)
            self.close()
        finally:
            self.closed = self.closed or bool(self.jobs)
            while self.jobs:  # let dropped jobs clean up (upload files) without serving
                func, arg = self.jobs.popleft()
                func(self, arg)
            self._running = False
            self._table.discard(self)

    def cancel(self, grace: float) -> None:
        """The client left: send nothing more, skip queued jobs, stop the running one after
        ``grace`` seconds."""
        self.closed = True
        self._pending.clear()
        self.window = None
        self.disconnected.set()
        self.wake()
        glet = self.greenlet
        if glet is None or not self._running:
            return  # not started yet: it will skip every job as the connection is closed
        if grace > 0:
            gevent.spawn_later(grace, self._kill_soon, glet)
        else:
            self._kill_soon(glet)

    def _kill_soon(self, glet: gevent.Greenlet[Any, None]) -> None:
        gevent.get_hub().loop.run_callback(self._kill, glet)

    def _kill(self, glet: gevent.Greenlet[Any, None]) -> None:
        # Runs in the hub. Greenlets are reused for other connections: throw only if ``glet``
        # still serves this one (a late kill must not cancel someone else's request).
        if self._running and self.greenlet is glet and not glet.dead:
            glet.throw(ClientGone)

    def abort(self) -> None:
        """Worker exit: close the client and let every queued job clean up without serving."""
        self.close()
        while self.jobs:
            func, arg = self.jobs.popleft()
            func(self, arg)

    # ------------------------------------------------------------------ replies

    def write(self, data: bytes) -> None:
        """Queue response bytes; they leave now or merged with the next ones."""
        if self.closed or not data:
            return
        if self.window is not None:
            self._send_credited(data)
            return
        if self._sending or self._flusher is not None:
            self._pending.append(data)  # the flusher sends it, merged with what is held back
        elif not self._pending and self._tokens().take():
            self._send(data)  # the usual case: nothing held back, a token left
        else:
            self._pending.append(data)
            self._pump()

    def end(self, close: bool) -> None:
        """The response is complete: send what is held back now, then close if asked."""
        if self.closed:
            return
        while self._sending:  # only when the flusher waits on back-pressure
            gevent.sleep(0.001)
        if self._pending:
            self._tokens().take(force=True)
            self._send_pending()
        if close:
            self.close()

    def respond(self, data: bytes, close: bool) -> None:
        """Send one complete response (an error page, say), closing after it if asked."""
        self.write(data)
        self.end(close)

    def send_whole(self, message: bytes, close: bool) -> None:
        """Send a ready reply message carrying a whole response, closing after it if asked.

        The fast path's send: the connection's first response, no credit window, so it is the
        one message ``respond`` would send (a fresh bucket always has a token for it).
        """
        if self.closed:
            return
        if self._bucket is None:
            self._whole_at = monotonic()  # the bucket, if ever needed, starts one token down
        else:
            self._bucket.take()
        self.channel.send(message)
        if close:
            self.close()

    def close(self) -> None:
        """Tell Mongrel2 to close the connection (the empty reply); idempotent."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        self._table.forget_window(self)
        self.channel.send(encode_close(self.sender, (self.conn_id,)))

    def wake(self) -> None:
        """Credits arrived (or the client left): a write waiting for credits goes on."""
        if self._credited is not None:
            self._credited.set()

    def _send_credited(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.closed:
            window = self.window
            if window is None:  # the client left meanwhile
                return
            size = window.take(len(view))
            if size == 0:
                self._wait_for_credits()
                continue
            piece, view = view[:size], view[size:]
            self.channel.send(encode_reply(self.sender, (self.conn_id,), bytes(piece)))

    def _wait_for_credits(self) -> None:
        if self._credited is None:
            self._credited = Event()
        self._credited.clear()
        if not self._credited.wait(CREDIT_STALL_TIMEOUT) and not self.closed:
            log.warning(
                "connection %d: no download credits for %ss; closing it",
                self.conn_id,
                CREDIT_STALL_TIMEOUT,
            )
            self.close()

    def _tokens(self) -> TokenBucket:
        """The pacing bucket, created on first use: as full as one created with the connection
        (it refills to ``BURST`` meanwhile), less the token a whole reply took."""
        bucket = self._bucket
        if bucket is None:
            bucket = self._bucket = TokenBucket(BURST, MERGE_INTERVAL)
            if self._whole_at:
                bucket.spent_at(self._whole_at)
        return bucket

    def _pump(self) -> None:
        while self._pending and not self.closed:
            if not self._tokens().take():
                self._schedule_flush()
                return
            self._send_pending()

    def _send_pending(self) -> None:
        pending = self._pending
        payload = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._send(payload)

    def _send(self, payload: bytes) -> None:
        self._sending = True
        try:
            self.channel.send(encode_reply(self.sender, (self.conn_id,), payload))
        finally:
            self._sending = False

    def _schedule_flush(self) -> None:
        if self._flusher is None:
            self._flusher = gevent.spawn_later(self._tokens().wait_time(), self._flush)

    def _flush(self) -> None:
        self._flusher = None
        self._pump()


class ConnectionTable:
    """The connections with work in flight, keyed by (channel index, connection id)."""

    def __init__(self, pool: Pool, sender_id: bytes | None = None) -> None:
        """Args:
        pool: the greenlet pool connections run in (its size bounds concurrency).
        sender_id: an explicit reply identity; otherwise the channel's recv_ident, else the
            request's sender.
        """
        self._pool = pool
        self._sender_id = sender_id
        self._conns: dict[tuple[int, int], Connection] = {}
        self._windows: dict[tuple[int, int], CreditWindow] = {}
        self._hub = gevent.get_hub()
        self._idle: list[Any] = []  # pool greenlets waiting for work
        self._parking = True

    def __len__(self) -> int:
        return len(self._conns)

    def submit(self, channel: Sink, conn_id: int, sender: bytes, job: Job) -> None:
        """Queue ``job`` on its connection; start the connection's greenlet if it is idle.

        Blocks while the pool is full (back-pressure on the receiving loop).
        """
        conn = self._conns.get((channel.index, conn_id))
        if conn is not None:
            conn.jobs.append(job)
            conn.last_seq = channel.read_seq
            return
        conn = self.open(channel, conn_id, sender)
        conn.jobs.append(job)
        self.start(conn)

    def open(self, channel: Sink, conn_id: int, sender: bytes) -> Connection:
        """A new connection with work, registered (the caller queues its job, then ``start``s
        it or runs it in its own greenlet); there must be none for ``conn_id`` already."""
        key = (channel.index, conn_id)
        conn = Connection(self, channel, conn_id, self.reply_sender(channel, sender))
        conn.window = self._windows.get(key)
        self._conns[key] = conn
        return conn

    def start(self, conn: Connection) -> None:
        """Run ``conn``'s jobs in a pool greenlet: a parked one (no spawn: a tenth of the cost)."""
        idle = self._idle
        if idle:
            conn.greenlet = runner = idle.pop()
            self._hub.loop.run_callback(runner.switch, conn)
        else:
            conn.greenlet = self._pool.spawn(partial(self._serve, conn))

    def hand_over(self, role: Callable[[], None]) -> gevent.Greenlet[..., Any]:
        """Run ``role`` (a receiving loop) in a parked pool greenlet, else in a new one; never
        blocks (callable from the hub)."""
        idle = self._idle
        if idle:
            runner = idle.pop()
            self._hub.loop.run_callback(runner.switch, role)
            return runner  # type: ignore[no-any-return]
        if self._pool.full():
            return gevent.spawn(role)  # the bound is on requests (--max-in-flight), not here
        return self._pool.spawn(partial(self._serve, role))

    def _serve(self, handed: Connection | Callable[[], None] | None) -> None:
        """Body of a pool greenlet: serve a connection (or run a role), park, take the next."""
        while handed is not None:
            if isinstance(handed, Connection):
                handed.run()
            else:
                handed()
            handed = self._park()

    def _park(self) -> Connection | Callable[[], None] | None:
        """Wait, idle, for a connection or a role to be handed over; None means exit."""
        if not self._parking:
            return None
        runner = gevent.getcurrent()
        self._idle.append(runner)
        try:
            while True:
                handed = self._hub.switch()
                if handed is None or isinstance(handed, Connection) or callable(handed):
                    return handed  # type: ignore[no-any-return]
        except BaseException:  # killed while parked (the pool is being killed)
            if runner in self._idle:
                self._idle.remove(runner)
            raise

    def release_idle(self) -> None:
        """Draining: parked greenlets exit now, busy ones when their connection is done."""
        self._parking = False
        idle, self._idle = self._idle, []
        for runner in idle:
            self._hub.loop.run_callback(runner.switch, None)

    def disconnect(self, channel_index: int, conn_id: int, grace: float) -> bool:
        """The client left: drop its queued work and cancel its request after ``grace`` s.

        Returns:
            Whether the connection had work in flight.
        """
        key = (channel_index, conn_id)
        self._windows.pop(key, None)
        conn = self._conns.get(key)
        if conn is None:
            return False
        conn.cancel(grace)
        return True

    def reply_sender(self, channel: Sink, sender: bytes) -> bytes:
        """The identity replies on ``channel`` start with (``sender``: the request's)."""
        return self._sender_id or channel.reply_ident or sender

    def is_idle(self, channel_index: int, conn_id: int, limit: int) -> bool:
        """No work in flight and no credit window, and fewer than ``limit`` connections busy:
        a request here may take the fast path."""
        key = (channel_index, conn_id)
        conns = self._conns
        return len(conns) < limit and key not in conns and key not in self._windows

    def has_work(self, channel_index: int, conn_id: int) -> bool:
        """Whether this connection has jobs queued or running."""
        return (channel_index, conn_id) in self._conns

    def refuse(self, channel: Sink, conn_id: int, sender: bytes, page: bytes) -> None:
        """Answer an idle connection at once with ``page`` and close it (no greenlet)."""
        self._windows.pop((channel.index, conn_id), None)
        reply_sender = self.reply_sender(channel, sender)
        channel.send(encode_reply(reply_sender, (conn_id,), page))
        channel.send(encode_close(reply_sender, (conn_id,)))

    def open_window(self, channel_index: int, conn_id: int, credits: int) -> None:
        """A connection's first request granted ``credits`` (``download.flow_control`` is on)."""
        self._windows[(channel_index, conn_id)] = CreditWindow(credits)

    def ensure_window(self, channel_index: int, conn_id: int, credits: int) -> None:
        """Give a connection whose first request this worker never saw a window of its own."""
        key = (channel_index, conn_id)
        if key not in self._windows:
            self._windows[key] = CreditWindow(credits)

    def credit(self, channel_index: int, conn_id: int, credits: int) -> bool:
        """Mongrel2 wrote ``credits`` bytes to the client; return whether the window is known."""
        key = (channel_index, conn_id)
        window = self._windows.get(key)
        if window is None:
            return False
        window.grant(credits)
        conn = self._conns.get(key)
        if conn is not None:
            conn.wake()
        return True

    def forget_window(self, conn: Connection) -> None:
        """We closed ``conn``: Mongrel2 sends no disconnect for it, so forget its credits."""
        self._windows.pop((conn.channel.index, conn.conn_id), None)

    @property
    def windows(self) -> int:
        """How many flow-controlled connections are known."""
        return len(self._windows)

    def abort_all(self) -> None:
        """Worker exit, after the pool was killed: close and clean up what is left."""
        for conn in list(self._conns.values()):
            conn.abort()
        self._conns.clear()
        self._windows.clear()

    def discard(self, conn: Connection) -> None:
        """Forget ``conn`` (its greenlet is ending)."""
        key = (conn.channel.index, conn.conn_id)
        if self._conns.get(key) is conn:
            del self._conns[key]
            done = conn.channel.done
            if done is not None:  # behind the relay: report it finished
                done.append((conn.conn_id, conn.last_seq))
                if len(done) == 1:
                    conn.channel.done_pending()
