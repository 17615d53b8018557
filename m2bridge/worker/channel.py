"""ZeroMQ I/O of a worker: one ``Channel`` (PULL + XPUB) per Mongrel2 server, on zmq.green.

With ``relay_channel`` and ``transport``, the worker path's zmq modules. Facts it is built on
(Mongrel2 1.12.2, re-checked against the real binary in the integration tests and in
``tests/component/worker/test_transport.py``):

- Mongrel2 binds a PUSH on ``send_spec`` and a SUB on ``recv_spec``; the handler connects.
- A reply published before the PUB has finished connecting is silently lost (slow joiner).
  We connect an XPUB with ``ZMQ_IMMEDIATE`` and ``ZMQ_XPUB_VERBOSE``: it receives the SUB's
  subscription (``b"\\x01" + recv_ident``) the moment the connection is up, and an
  unsubscription (``b"\\x00"``) when Mongrel2 goes away, then a subscription again after it
  restarts. Requests are read from the PULL only while subscribed, so no reply is ever
  published into the void; the PULL is first connected once the XPUB is ready.
- With ``recv_ident`` set, Mongrel2 drops replies that do not start with it: the subscribed
  topic *is* the recv_ident, so the channel offers it as the reply identity.
- ``ZMQ_XPUB_NODROP``: when Mongrel2 falls behind by the high-water mark, sending blocks the
  greenlet (back-pressure) instead of silently dropping the reply.
- Mongrel2 takes one frame at a time from its SUB (``mqrecv``) and parses each as a reply,
  whatever the MORE flag says. The replies of one event-loop pass therefore leave as the frames
  of one multipart message: ZeroMQ hands a message to the I/O thread once its last frame is
  in, so a burst costs one wake-up of each side's I/O thread instead of one per reply.

The PULL (or, behind the relay, the DEALER of ``relay_channel.RelayChannel``) is a plain
pyzmq socket read without blocking; the receiving greenlet waits on its ZMQ_FD through one
persistent gevent watcher (zmq.green's blocking recv costs a timer, an AsyncResult and two
ZMQ_EVENTS reads per wait, about as much as parsing a request).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Container
from typing import Any, cast

import gevent
import zmq.green as zmq
from gevent.event import Event
from zmq.backend import Socket as BackendSocket
from zmq.sugar.socket import Socket as PlainSocket

from m2bridge.wire.sender import is_sender
from m2bridge.zmqread import read_nowait

log = logging.getLogger("m2bridge.worker.channel")

#: Seconds before the first "waiting for Mongrel2" warning, and between the next ones.
FIRST_WAIT_WARNING = 1.0
WAIT_WARNING_INTERVAL = 5.0
#: How long closing waits for replies still queued in ZeroMQ to reach Mongrel2 (ms).
CLOSE_LINGER_MS = 2000
#: Replies queued on one channel past which a sending greenlet flushes (or, while Mongrel2 is
#: behind, waits): the bound on memory held by replies not yet handed to ZeroMQ.
OUTBOX_LIMIT = 256
#: Longest time a subscription change can go unnoticed (see ``Channel._watch_subscriptions``).
WATCH_INTERVAL_MS = 100
#: Seconds between checks for a read wake-up that ZMQ_FD did not signal (see ``_recheck``).
READ_RECHECK = 1.0
_SUBSCRIBE = 1
_UNSUBSCRIBE = 0


#: A burst of replies leaves as the frames of one multipart message: ZeroMQ hands a message
#: to its I/O thread (one wake-up) once its last frame is in, and Mongrel2 reads every frame
#: as a reply of its own (``mqrecv`` takes one frame at a time, whatever the MORE flag).
_BURST_FLAGS = zmq.NOBLOCK | zmq.SNDMORE
#: Replies in one such message at most. ZeroMQ's send high-water mark counts messages (1000 by
#: default), so this also bounds the replies it holds before senders wait for Mongrel2.
MAX_BURST_FRAMES = 64
# pyzmq's compiled Socket.send/recv, below the zmq.green wrapper and pyzmq's pure-Python send
# (routing_id/group handling this module never uses: half the cost of a small send).
_raw_send = BackendSocket.send
_raw_recv = BackendSocket.recv


class Channel:
    """The two sockets paired with one Mongrel2 server (its ``send_spec`` and ``recv_spec``).

    Attributes:
        index: position of this pair in the worker's spec lists.
        send_spec: where our PULL connects (Mongrel2's PUSH).
        recv_spec: where our XPUB connects (Mongrel2's SUB).
        reply_ident: the recv_ident Mongrel2 subscribed with, when it is non-empty; replies
            must start with it.
    """

    #: Straight on Mongrel2 no message is numbered and no connection reported finished (see
    #: ``relay_channel.RelayChannel``, which does).
    read_seq = 0
    done: list[tuple[int, int]] | None = None
    kept: Container[tuple[int, int]] = ()

    def __init__(
        self,
        context: zmq.Context[Any],
        index: int,
        specs: tuple[str, str],
        identity: str | None = None,
    ) -> None:
        self.index = index
        self.send_spec, self.recv_spec = specs
        self.reply_ident: bytes | None = None
        self._topics: set[bytes] = set()
        self._ready = Event()
        self._pull_connected = False
        self._outbox: deque[bytes] = deque()
        self._stalled: Event | None = None  # set while a greenlet waits for Mongrel2
        self._drainer: gevent.Greenlet[[], None] | None = None
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self._receiver: Any = None  # the greenlet waiting in ``recv``
        #: The last non-blocking read found the socket empty (zmq.Again): libzmq's FD will
        #: signal the next message, so ``recv`` may wait before reading (one exception, not two).
        self._drained = False
        self._pull = self._request_socket(context, identity)
        self._start_reading()
        self._pub = context.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        self._pub.setsockopt(zmq.IMMEDIATE, 1)
        self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._pub.setsockopt(zmq.XPUB_NODROP, 1)
        self._pub.connect(self.recv_spec)
        self._watcher = gevent.spawn(self._watch_subscriptions)

    def done_pending(self) -> None:
        """Nothing to report straight on Mongrel2 (``done`` is None)."""

    def _request_socket(self, context: zmq.Context[Any], identity: str | None) -> zmq.Socket[Any]:
        # A plain socket, read by ``recv`` below: zmq.green's reading costs a timer, an
        # AsyncResult and a ZMQ_EVENTS read per wait, as much as parsing a request.
        pull: zmq.Socket[Any] = PlainSocket(context, zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        if identity:
            pull.setsockopt(zmq.IDENTITY, identity.encode())
        return pull

    def _start_reading(self) -> None:
        """Watch the PULL's ZMQ_FD for ``recv`` (and recheck it now and then)."""
        self._reader: Any = self._loop.io(cast(int, self._pull.getsockopt(zmq.FD)), 1)
        self._reader.start(self._readable)
        self._safety: Any = self._loop.timer(READ_RECHECK, READ_RECHECK, ref=False)
        self._safety.start(self._recheck)

    @property
    def ready(self) -> bool:
        """Mongrel2's SUB is connected and subscribed: replies published now arrive."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None, warn: bool = True) -> bool:
        """Block until Mongrel2 is connected, warning every few seconds while it is not.

        Returns:
            Whether it is ready (False only when ``timeout`` ran out).
        """
        remaining = timeout
        interval = FIRST_WAIT_WARNING
        while not self._ready.is_set():
            step = interval if remaining is None else min(remaining, interval)
            interval = WAIT_WARNING_INTERVAL
            if self._ready.wait(step):
                break
            if warn:
                log.warning("waiting for Mongrel2 at %s (recv_spec)", self.recv_spec)
            if remaining is not None:
                remaining -= step
                if remaining <= 0:
                    return False
        return True

    def recv(self) -> bytes:
        """Return the next message Mongrel2 sent; block while Mongrel2 is not connected."""
        self.wait_ready()
        pull = self._pull
        if self._drained:  # the last read found it empty: wait, its FD signals the next one
            self._drained = False
            self._wait_readable()
        while (frame := read_nowait(pull)) is None:
            self._wait_readable()
        if not self._ready.is_set():  # Mongrel2 restarted while we waited: PUB not back yet
            self.wait_ready()
        return frame

    def _wait_readable(self) -> None:
        """Wait until the PULL's ZMQ_FD signals (libzmq's mailbox: a message may be in)."""
        self._receiver = gevent.getcurrent()
        try:
            self._hub.switch()
        finally:
            self._receiver = None

    def _readable(self) -> None:
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            receiver.switch()

    def _recheck(self) -> None:
        # ZMQ_FD is edge-like: a signal consumed by another call on the socket (a getsockopt,
        # a recv that found more than one message) is not repeated. The receiver drains the
        # socket before it waits, so this never fires in practice; it bounds the cost of a
        # wake-up missed all the same to READ_RECHECK seconds.
        if self._receiver is not None and cast(int, self._pull.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            self._readable()

    def recv_nowait(self) -> bytes | None:
        """Return a message already queued locally, or None (also while Mongrel2 is away)."""
        if not self._pull_connected or not self._ready.is_set():
            return None
        frame = read_nowait(self._pull)
        if frame is None:
            self._drained = True  # ``recv`` waits at once instead of reading an empty socket
        return frame

    def start_draining(self) -> None:
        """Stopping: ``recv_nowait`` now returns what is queued here, then None (no-op here)."""

    def stop_receiving(self) -> None:
        """Disconnect the PULL: Mongrel2 stops handing this worker new requests."""
        if self._pull_connected:
            self._pull_connected = False
            try:
                self._pull.disconnect(self.send_spec)
            except zmq.ZMQError as exc:  # already gone: nothing to stop
                log.debug("disconnecting %s: %s", self.send_spec, exc)

    def send(self, message: bytes) -> None:
        """Queue one reply; it is published, in order, once the ready greenlets have run.

        Replies leave in one burst per pass of the event loop (one wake-up of ZeroMQ's I/O
        thread for the burst, not one per reply). While Mongrel2 is behind, a greenlet that
        finds ``OUTBOX_LIMIT`` replies queued waits (back-pressure on it alone).
        """
        outbox = self._outbox
        outbox.append(message)
        if self._stalled is not None:  # Mongrel2 is behind: the draining greenlet sends it
            if len(outbox) >= OUTBOX_LIMIT:
                self._stalled.wait()
        elif len(outbox) == 1:
            self._loop.run_callback(self._flush)
        elif len(outbox) >= OUTBOX_LIMIT:
            self._flush()

    def _flush(self) -> None:
        """Publish what is queued without blocking; on back-pressure hand it to a greenlet."""
        outbox = self._outbox
        pub = self._pub
        if self._stalled is not None or pub.closed:
            return
        while outbox:
            # The plain non-blocking send: zmq.green's wrapper would re-read ZMQ_EVENTS after
            # every reply, a third of the per-reply cost; the watcher polls instead.
            more = min(len(outbox), MAX_BURST_FRAMES) - 1
            try:
                _raw_send(pub, outbox[0], _BURST_FLAGS if more else zmq.NOBLOCK)
            except zmq.Again:
                self._stalled = Event()
                self._drainer = gevent.spawn(self._drain_stalled)
                return
            outbox.popleft()
            # The rest of the burst: frames of the same message, accepted with the first one.
            for _ in range(more - 1):
                _raw_send(pub, outbox.popleft(), _BURST_FLAGS)
            if more:
                _raw_send(pub, outbox.popleft(), zmq.NOBLOCK)

    def _drain_stalled(self) -> None:
        outbox = self._outbox
        try:
            while outbox:
                self._pub.send(outbox[0])  # zmq.green: waits (this greenlet) until it fits
                outbox.popleft()
        finally:
            stalled, self._stalled = self._stalled, None
            if stalled is not None:
                stalled.set()

    def close(self, linger_ms: int = CLOSE_LINGER_MS) -> None:
        """Close both sockets, giving queued replies up to ``linger_ms`` to leave."""
        self._flush()
        if self._stalled is not None and not self._stalled.wait(linger_ms / 1000):
            log.warning(
                "%d replies to %s not sent: Mongrel2 is behind", len(self._outbox), self.recv_spec
            )
        if self._drainer is not None:
            self._drainer.kill(block=False)
        self._outbox.clear()
        self._watcher.kill(block=False)
        self._stop_reading()
        self._pull.close(0)
        self._pub.close(linger_ms)

    def _stop_reading(self) -> None:
        self._reader.stop()
        self._safety.stop()

    def _watch_subscriptions(self) -> None:
        # poll() with a timeout, not a blocking recv(): replies bypass zmq.green, so a readable
        # edge of this socket may go unnoticed; polling bounds that to WATCH_INTERVAL_MS.
        while True:
            if not self._pub.poll(WATCH_INTERVAL_MS):
                continue
            message: bytes = self._pub.recv()
            kind, topic = (message[0], message[1:]) if message else (-1, b"")
            if kind == _SUBSCRIBE:
                self._subscribed(topic)
            elif kind == _UNSUBSCRIBE:
                self._unsubscribed(topic)

    def _subscribed(self, topic: bytes) -> None:
        self._topics.add(topic)
        self.reply_ident = topic if is_sender(topic) else None
        if self._ready.is_set():
            return
        log.info("Mongrel2 connected at %s", self.recv_spec)
        self._ready.set()
        if not self._pull_connected:
            self._connect_requests()

    def _connect_requests(self) -> None:
        self._pull.connect(self.send_spec)
        self._pull_connected = True

    def _unsubscribed(self, topic: bytes) -> None:
        self._topics.discard(topic)
        if not self._topics and self._ready.is_set():
            self._ready.clear()
            log.warning("Mongrel2 at %s went away; pausing until it is back", self.recv_spec)
