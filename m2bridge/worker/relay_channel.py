"""A worker's channel behind the relay (``m2bridge relay``): a DEALER instead of the PULL.

The words it exchanges with the relay are ``m2bridge.relay.wire``; replies still go straight
to Mongrel2 over the XPUB of ``channel.Channel``, and the DEALER is read through the same
persistent ZMQ_FD watcher as the PULL.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Container
from time import monotonic
from typing import Any, cast

import zmq.green as zmq
from zmq.sugar.socket import Socket as PlainSocket

from m2bridge.relay import wire as relay_wire
from m2bridge.worker.channel import WATCH_INTERVAL_MS, Channel, _raw_recv, _raw_send
from m2bridge.zmqread import read_nowait

log = logging.getLogger("m2bridge.worker.relay_channel")

#: Seconds without a message after which a worker tells the relay its window again (``idle``).
IDLE_REGRANT = 1.0
#: Seconds a draining worker waits for the relay's ``bye-ack`` before it gives up.
BYE_ACK_TIMEOUT = 5.0
#: Seconds between a ``RelayChannel``'s checks for a missed wake-up, the idle grant and the
#: ``bye-ack`` deadline (the idle grant leaves after IDLE_REGRANT to IDLE_REGRANT + this).
RELAY_TICK = WATCH_INTERVAL_MS / 1000
#: Seconds at least between two ``start`` messages sent only to report finished connections
#: (gated: ``relay_wire``). Finished connections also ride on every ``start`` of a read batch;
#: this report leaves when the worker has nothing left to read (then it reaches the relay
#: before the client's next request can). One every 10 ms at most lets a busy connection go
#: every few dozen requests, enough to spread connections over workers that join.
REPORT_INTERVAL = 0.01
#: ZMTP heartbeats on the DEALER (ms), as on the relay's ROUTER (``relay.router``): a PING
#: every HEARTBEAT_IVL_MS; a relay silent for HEARTBEAT_TIMEOUT_MS (host lost) has its
#: connection closed and reconnected; HEARTBEAT_TTL_MS tells the relay to close ours after as
#: long without a word from us. libzmq does it all: no per-message work.
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
HEARTBEAT_TTL_MS = 3000


class RelayChannel(Channel):
    """A channel whose requests come from the relay (``m2bridge relay``) over a DEALER.

    ``send_spec`` is the relay's endpoint; replies still go straight to Mongrel2 over the XPUB.
    The DEALER connects once Mongrel2 subscribed (as the PULL would) and grants the relay
    ``relay_wire.WINDOW`` messages, then more in batches as it reads them. Stopping sends ``bye``
    and reads until the relay's ``bye-ack``, which follows the last message routed here: the
    worker serves all of them, and nothing is left on the wire when the DEALER disconnects.

    The DEALER is a plain socket read like the PULL of ``Channel`` (one persistent watcher of
    its ZMQ_FD), though grants and ``bye`` leave on it too: a send may consume the FD's edge,
    so every send is followed by a read attempt (or a ZMQ_EVENTS check) before anyone waits.
    The recheck timer ticks every ``RELAY_TICK`` seconds: it also wakes the waiting receiver
    for the idle grant and a draining reader for its ``bye-ack`` deadline, so no wait needs a
    timer of its own.
    """

    #: Draining state, set per instance once it changes (the class values are the start).
    _unacked = 0
    _draining = False
    _acked = False
    _deadline = 0.0
    #: When the receiver last started waiting for messages (for the idle grant).
    _idle_since = 0.0

    def __init__(
        self,
        context: zmq.Context[Any],
        index: int,
        specs: tuple[str, str],
        identity: str | None = None,
        source: int | None = None,
    ) -> None:
        #: Which of the relay's sources (its send_specs, in order) this channel serves: its
        #: ``index`` unless given (one relay per front end: ``relay_wire.relay_sources``).
        self.source = index if source is None else source
        #: The number of the last message handed out by ``recv``/``recv_nowait``.
        self.read_seq = 0
        #: Behind a relay started with ``--resend`` (it said ``count start``), what runs only on
        #: its ``go``; None until then (see ``_Gate``).
        self._gate: _Gate | None = None
        #: Connections finished here (``(conn id, read_seq of its last message)``, appended by
        #: the connection table) while gated, reported with the next ``start``; ``kept``:
        #: those never reported, as their state lives here (open WebSockets, set by the
        #: dispatcher).
        self.done: list[tuple[int, int]] | None = None
        self.kept: Container[tuple[int, int]] = ()
        super().__init__(context, index, specs, identity)

    def _request_socket(self, context: zmq.Context[Any], identity: str | None) -> zmq.Socket[Any]:
        # Plain, like the PULL (see ``Channel._request_socket``); no identity: the ROUTER names
        # each worker.
        dealer: zmq.Socket[Any] = PlainSocket(context, zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        dealer.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        dealer.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TTL_MS)
        return dealer

    def _start_reading(self) -> None:
        """Watch the DEALER's ZMQ_FD; tick every ``RELAY_TICK`` for rechecks and deadlines."""
        self._reader: Any = self._loop.io(cast(int, self._pull.getsockopt(zmq.FD)), 1)
        self._reader.start(self._fd_signalled)
        self._safety: Any = self._loop.timer(RELAY_TICK, RELAY_TICK, ref=False)
        self._safety.start(self._recheck)

    def _input_after_report(self, gate: _Gate) -> bool:
        """Before the receiver waits: report the connections finished meanwhile (nothing is
        left to read); whether input may be in unsignalled, as a ``start`` sent since the last
        read (this report too) may have taken the FD's edge of a message just in."""
        if self.done:
            self._report_due(gate)
        if not gate.sent:
            return False
        gate.sent = False
        return bool(cast(int, self._pull.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    def _fd_signalled(self) -> None:
        if self._receiver is not None:
            self._readable()
        elif not self._pull.closed:
            # Nobody waits: let libzmq take the signal (it reads before it waits, so nothing
            # is missed), or the level-triggered watcher would call back on every loop pass.
            self._pull.getsockopt(zmq.EVENTS)

    def _recheck(self) -> None:
        # Wakes the waiting reader when a message came in unsignalled (an edge consumed by a
        # send), when it is time for the idle grant, and while draining (the ack's deadline).
        if self._receiver is None:
            return
        if (
            self._draining
            or monotonic() - self._idle_since > IDLE_REGRANT
            or cast(int, self._pull.getsockopt(zmq.EVENTS)) & zmq.POLLIN
        ):
            self._readable()

    def _connect_requests(self) -> None:
        super()._connect_requests()
        self._grant(relay_wire.WINDOW)

    def recv(self) -> bytes:
        """Return the next message the relay routed here and cleared to run; block while
        Mongrel2 is away."""
        self.wait_ready()
        self._idle_since = monotonic()
        if self._drained and not (self._gate and self._gate.cleared):  # found empty: wait first
            self._drained = False
            if not (self._gate and self._input_after_report(self._gate)):
                self._wait_readable()
        while True:
            frame = self._next()
            if frame is not None:
                if not self._ready.is_set():
                    self.wait_ready()
                return frame
            if monotonic() - self._idle_since > IDLE_REGRANT:
                self._grant(relay_wire.WINDOW, idle=True)  # a restarted relay forgot our credit
                self._idle_since = monotonic()
                continue  # read again before waiting: the send may have taken the FD's edge
            if not (self._gate and self._input_after_report(self._gate)):
                self._wait_readable()

    def recv_nowait(self) -> bytes | None:
        """A message read and cleared, or None; once draining, waits for each message up to
        the ack."""
        if not self._pull_connected:
            return None
        if self._draining:
            return self._drain_one()
        return self._next() if self._ready.is_set() else None

    def start_draining(self) -> None:
        """Tell the relay ``bye``: it routes nothing more here and answers ``bye-ack``. Gated,
        ask first (``start``) for what was read: the ack then clears everything read up to it,
        unless a ``count`` before it says the relay had dropped us (see ``relay_wire``)."""
        if not self._pull_connected or self._draining:
            return
        gate = self._gate
        if gate is not None and gate.gated and gate.read > gate.asked:
            self._ask(gate)
        self._draining = True
        self._deadline = monotonic() + BYE_ACK_TIMEOUT
        if not self._send_control(relay_wire.BYE):
            log.warning("relay at %s unreachable: not draining it", self.send_spec)
            self._give_up_draining()

    def _drain_one(self) -> bytes | None:
        while not self._acked:
            frame = self._next()
            if frame is not None:
                return frame
            if self._acked or (self._gate and self._gate.cleared):
                break
            if monotonic() > self._deadline:
                log.warning(
                    "no bye-ack from the relay at %s in %ss", self.send_spec, BYE_ACK_TIMEOUT
                )
                self._give_up_draining()
                break
            self._wait_readable()  # the tick wakes it at least every RELAY_TICK
        return self._next() if self._gate and self._gate.cleared else None

    def _give_up_draining(self) -> None:
        """No ``bye-ack`` will come: what was read and not cleared is dropped (the relay may
        have sent it elsewhere)."""
        self._acked = True
        if self._gate is not None and self._gate.waiting:
            self._drop_waiting(self._gate)

    def _drop_waiting(self, gate: _Gate) -> None:
        log.warning(
            "%d message(s) from the relay at %s dropped: it may have sent them elsewhere",
            len(gate.waiting),
            self.send_spec,
        )
        gate.read -= len(gate.waiting)
        gate.waiting.clear()

    def _next(self) -> bytes | None:
        """The next message cleared to run, or None if there is none now. Not gated, a
        message is cleared once read: the DEALER is read until a message or EAGAIN (its FD
        signals nothing new until then)."""
        if self._gate is not None:
            return self._next_gated(self._gate)
        while not (frame := read_nowait(self._pull)):
            if frame is None:
                self._drained = True
                return None
            self._on_control(_raw_recv(self._pull, zmq.NOBLOCK))  # ["", word]
            if self._gate is not None:  # told ``count start``
                return self._next_gated(self._gate)
        self._drained = False
        self.read_seq += 1
        self._unacked += 1  # as ``_count_read``, inline: this is every message's path
        if (
            self._unacked >= relay_wire.GRANT_BATCH
            and not self._draining
            and self._grant(self._unacked)
        ):
            self._unacked = 0
        return frame

    def _next_gated(self, gate: _Gate) -> bytes | None:
        """Gated: read what the DEALER holds if nothing is cleared, and ask the relay to clear
        it (``start``); the next message cleared, or None."""
        cleared = gate.cleared
        if not cleared:
            if not gate.gated:  # a plain ``count`` came, and what was cleared is served
                self._gate = None
                return self._next()
            self._read_all(gate)
            if gate.read > gate.asked and not self._draining:
                self._ask(gate)
            if not cleared:
                return None
        self.read_seq += 1
        return cleared.popleft()

    def _count_read(self) -> None:
        """One more message read: grant the relay a batch of credit once a batch is read."""
        self._unacked += 1
        if (
            self._unacked >= relay_wire.GRANT_BATCH
            and not self._draining
            and self._grant(self._unacked)
        ):
            self._unacked = 0

    def _read_all(self, gate: _Gate) -> None:
        """Read every message the DEALER holds: they wait for the relay's ``go`` (or, draining,
        its ``bye-ack``) while gated; control words are acted on at once (a plain ``count``
        ends the gating)."""
        while (frame := read_nowait(self._pull)) is not None:
            if not frame:  # a control message: ["", word]
                self._on_control(_raw_recv(self._pull, zmq.NOBLOCK))
                continue
            gate.read += 1
            (gate.waiting if gate.gated else gate.cleared).append(frame)
            self._count_read()
        self._drained = True

    def _on_control(self, control: bytes) -> None:
        if (cleared := relay_wire.parse_go(control)) is not None:
            if self._gate is not None:
                self._gate.clear_up_to(cleared)
        elif control == relay_wire.BYE_ACK and self._draining:
            self._acked = True  # it forgot us at bye, with its copies: all we read may run
            if self._gate is not None:
                self._gate.clear(len(self._gate.waiting))
        elif (count := relay_wire.parse_count(control)) is not None:
            self._recount(*count)
        else:
            log.warning("unexpected control message from the relay: %r", control[:40])

    def _recount(self, gated: bool, generation: int) -> None:
        """The relay does not know this worker (it restarted, or it dropped us as gone): it
        numbers from here, and with ``gated`` clears what we read before we run it. What it
        has not cleared is dropped: it may have sent it to another worker, and a request
        never runs twice."""
        gate = self._gate
        if gate is None:
            if not gated:
                return
            self._gate = gate = _Gate(self.read_seq)
        elif gate.waiting:
            self._drop_waiting(gate)
        gate.base = gate.asked = gate.read
        gate.gated = gated
        gate.generation = generation
        self.done = [] if gated else None

    def _ask(self, gate: _Gate) -> None:
        """``start``: the relay may clear what was read, and lets the finished connections go."""
        gate.sent = True  # after the last read (a grant is sent before it: no need there)
        start = relay_wire.encode_start(gate.generation, gate.read - gate.base, self._finished())
        if self._send_control(start):
            gate.asked = gate.read

    def _finished(self) -> list[tuple[int, int]]:
        """The finished connections to report (at most ``MAX_DONE``; the rest wait), numbered
        as the relay numbers them; those from before its ``count`` are dropped."""
        done, gate = self.done, self._gate
        if not done or gate is None:
            return []
        if self._outbox:  # a connection is not finished before its replies left: now
            self._flush()
            if self._outbox:  # Mongrel2 is behind: report once they have left
                return []
        base, kept, index = gate.base, self.kept, self.index
        report = [
            (conn_id, seq - base)
            for conn_id, seq in done[: relay_wire.MAX_DONE]
            if seq > base and (index, conn_id) not in kept
        ]
        del done[: relay_wire.MAX_DONE]
        return report

    def done_pending(self) -> None:
        """A connection finished while nothing else was: report it now if the receiver waits
        (nothing is left to read, so the report reaches the relay before the client's next
        request can), unless one left less than ``REPORT_INTERVAL`` ago."""
        if self._receiver is not None and self._gate is not None:
            self._report_due(self._gate)

    def _report_due(self, gate: _Gate) -> None:
        """Report the finished connections unless a report left less than
        ``REPORT_INTERVAL`` ago."""
        now = monotonic()
        if now - gate.reported_at < REPORT_INTERVAL or self._pull.closed or self._draining:
            return
        gate.reported_at = now
        self._ask(gate)

    def _grant(self, credits: int, *, idle: bool = False) -> bool:
        return self._send_control(relay_wire.encode_grant(credits, self.source, idle=idle))

    def _send_control(self, frame: bytes) -> bool:
        """Send ``frame`` to the relay without blocking; False if it cannot take it now."""
        try:
            _raw_send(self._pull, frame, zmq.NOBLOCK)
            sent = True
        except zmq.Again:
            sent = False  # the relay is behind or away: grant with the next batch
        # The send may have taken the FD's edge of a message that just came in. The receiver
        # reads before it waits, so only one already waiting can miss it: wake it.
        if self._receiver is not None and cast(int, self._pull.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            self._loop.run_callback(self._readable)
        return sent


class _Gate:
    """What a ``RelayChannel`` keeps once the relay said ``count start`` (``relay_wire``).

    Numbers: ``read`` counts the messages read, ``asked`` is the last one named in a
    ``start``, ``base`` the count at the relay's ``count`` (the relay's numbers are ours minus
    it), ``generation`` that of the count. Messages read wait in ``waiting`` until a ``go``
    moves them to ``cleared``: ``read_seq + len(cleared) + len(waiting) == read``. ``gated``
    turns False when a later plain ``count`` ends the gating; ``sent``: a ``start`` left since
    the last read.
    """

    __slots__ = (
        "asked",
        "base",
        "cleared",
        "gated",
        "generation",
        "read",
        "reported_at",
        "sent",
        "waiting",
    )

    def __init__(self, read: int) -> None:
        self.read = self.asked = self.base = read
        self.cleared: deque[bytes] = deque()
        self.waiting: deque[bytes] = deque()
        self.gated = True
        self.generation = relay_wire.NO_GENERATION
        self.sent = False
        self.reported_at = 0.0

    def clear(self, count: int) -> None:
        """The first ``count`` messages waiting may run."""
        waiting, cleared = self.waiting, self.cleared
        for _ in range(min(count, len(waiting))):
            cleared.append(waiting.popleft())

    def clear_up_to(self, number: int) -> None:
        """``go``: the messages waiting up to the relay's ``number`` may run."""
        self.clear(number + self.base - (self.read - len(self.waiting)))
