"""The relay process (``m2bridge relay``): Mongrel2's PUSH -> credit-based ROUTER -> workers.

Why: a worker whose PULL is connected straight to Mongrel2's PUSH cannot stop without losing
what libzmq holds on that connection (docs/reliability.md). Here the relay holds the PULL(s)
and workers connect a DEALER to its ROUTER (``ipc://``). Routing is ``relay.state``; the words
between relay and worker are ``relay.wire``.

A worker that vanished is found by the ROUTER's monitor (its connection's fd, learnt from the
messages it sent, is disconnected; ZMTP heartbeats close a silent host's connection) or by
``ROUTER_MANDATORY`` (sending to it fails): it is dropped, and what it had not started (a
worker runs nothing the relay has not answered ``go`` to, ``relay.wire``) goes to other
workers. Given Mongrel2's recv_specs, the relay also closes the connections of which it had
started a request (killed: a crash, hung and killed by the supervisor, or its host lost), so
their clients get an EOF at once rather than after Mongrel2's idle reaper (about 2 minutes):
such a request may have run, so it is never sent again, and its answer may be half written.
Plain zmq, no gevent: one thread, one poller, batches read with NOBLOCK, no per-message logging.
"""

from __future__ import annotations

import collections
import logging
import random
import signal
from collections.abc import Sequence
from typing import Any

import zmq
from zmq.backend import Socket as BackendSocket
from zmq.utils.monitor import parse_monitor_message

from m2bridge.errors import ProtocolError
from m2bridge.relay import wire
from m2bridge.relay.state import RelayState
from m2bridge.wire.encode import encode_broadcast
from m2bridge.zmqread import read_nowait

log = logging.getLogger("m2bridge.relay.router")

#: Messages read from one socket before looking at the others.
BATCH = 256
#: pyzmq's compiled send: the pure-Python wrappers of ``zmq.Socket`` (routing ids, groups,
#: ``send_multipart``'s loop) cost more than the routing decision itself.
_raw_send = BackendSocket.send
_MORE = zmq.SNDMORE | zmq.NOBLOCK
#: ``zmq_msg_get`` property: the fd a message came in on (deprecated in libzmq, still there;
#: pyzmq has no name for it).
ZMQ_SRCFD = 2
#: Poll timeout (ms): how quickly a stop request is seen.
POLL_MS = 200
#: Linger (ms) of the ROUTER at exit: messages already routed get this long to leave.
CLOSE_LINGER_MS = 1000
#: ZMTP heartbeats on the ROUTER (ms): a PING every HEARTBEAT_IVL_MS to each worker, and a
#: connection that brings nothing (no PONG, no message) for HEARTBEAT_TIMEOUT_MS is closed by
#: libzmq. A worker host that vanishes without closing anything (link down, frozen) is then
#: seen by the monitor (EVENT_DISCONNECTED) and handled as a vanished worker within about
#: 3-4 s. libzmq answers PINGs itself, so a busy worker never misses one; no per-message work.
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000


class Relay:
    """PULL sockets connected to Mongrel2 and one ROUTER bound for workers; with
    ``recv_specs`` (one per send_spec, in order), PUB sockets to close a vanished worker's
    connections."""

    def __init__(
        self,
        send_specs: Sequence[str],
        bind: str,
        context: zmq.Context[Any],
        recv_specs: Sequence[str] = (),
        *,
        resend: bool = False,
    ) -> None:
        if not send_specs:
            raise ValueError("a relay needs at least one --send-spec")
        if recv_specs and len(recv_specs) != len(send_specs):
            raise ValueError("give one recv_spec per send_spec, or none")
        self.state = RelayState(
            len(send_specs), resend=resend, first_generation=random.randrange(1, 1 << 31)
        )
        self.forwarded = 0
        self.stopping = False
        self._held: list[collections.deque[bytes]] = [collections.deque() for _ in send_specs]
        #: Whether each source's PULL is polled: not while anything of it is held (a held
        #: queue may empty and fill again within one release, so it is tracked apart)
        self._reading = [True] * len(send_specs)
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDHWM, 0)  # credit bounds what waits for each worker
        self.router.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self.router.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        self.router.bind(bind)
        self.monitor = self.router.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        #: the worker behind each connection fd (``ZMQ_SRCFD`` of its first message)
        self._peer_fds: dict[int, bytes] = {}
        #: connections accepted whose worker is not known yet: while there are any, messages
        #: are read as frames (slower) to learn it; otherwise as plain bytes
        self._unmapped: set[int] = set()
        self.pulls = []
        for spec in send_specs:
            pull = context.socket(zmq.PULL)
            pull.setsockopt(zmq.LINGER, 0)
            pull.connect(spec)
            self.pulls.append(pull)
        self.pubs = []
        for spec in recv_specs:
            pub = context.socket(zmq.PUB)
            pub.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
            pub.connect(spec)
            self.pubs.append(pub)
        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        for pull in self.pulls:
            self.poller.register(pull, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def run(self) -> None:
        """Route until ``stopping`` is set (SIGTERM/SIGINT in ``main``)."""
        while not self.stopping:
            self.step(POLL_MS)

    def step(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for input and handle one batch of each ready socket."""
        events = dict(self.poller.poll(timeout_ms))
        if self.monitor in events:  # first: a disconnect precedes any reuse of its fd
            self._read_monitor()
        if self.router in events:
            self._read_workers()
        for source, pull in enumerate(self.pulls):
            if pull in events and not self._held[source]:
                self._read_mongrel2(source, pull)

    def close(self) -> None:
        """Close every socket (routed messages get ``CLOSE_LINGER_MS`` to leave)."""
        for pull in self.pulls:
            pull.close(0)
        for pub in self.pubs:
            pub.close(CLOSE_LINGER_MS)
        self.router.disable_monitor()
        self.monitor.close(0)
        self.router.close(CLOSE_LINGER_MS)

    def _read_mongrel2(self, source: int, pull: zmq.Socket[Any]) -> None:
        held = self._held[source]
        for _ in range(BATCH):
            if held:  # requests sent again wait for credit: nothing may pass them
                break
            frame = read_nowait(pull)  # None when empty, without pyzmq's zmq.Again
            if frame is None:
                break
            if not self._forward(source, frame):
                self._hold(source, [frame])  # no credit anywhere: stop reading
                break
        if self.state.ungated:
            self._log_ungated()

    def _log_ungated(self) -> None:
        for peer in self.state.ungated:
            log.warning(
                "worker %s runs what it reads without asking (start): it predates --resend;"
                " if it is lost, its connections are closed and nothing is sent again",
                peer.hex(),
            )
        self.state.ungated.clear()

    def _forward(self, source: int, frame: bytes) -> bool:
        """Send ``frame`` where ``relay_state`` says; False: nobody has credit (hold it)."""
        while True:
            targets = self.state.route(source, frame)
            if targets is None:
                return False
            failed = [peer for peer in targets if not self._send(peer, frame)]  # every one
            if not failed:
                self.forwarded += 1
                return True
            words = frame.split(b" ", 3)  # the message to route elsewhere: spare its conn
            spare = words[1] if len(words) == 4 else None
            resent = [copy for peer in failed for _, copy in self._vanished(peer, "gone", spare)]
            if len(targets) != 1 or any(copy is frame for copy in resent):
                return True  # sent again with its peer's other copies; a lost broadcast is not

    def _send(self, peer: bytes, *frames: bytes) -> bool:
        """Send ``frames`` to ``peer``; False if it is gone (the caller drops it)."""
        try:
            _raw_send(self.router, peer, _MORE)
            for frame in frames[:-1]:
                _raw_send(self.router, frame, _MORE)
            _raw_send(self.router, frames[-1], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise
            return False
        return True

    def _send_control(self, peer: bytes, *frames: bytes) -> None:
        """Send a control message to ``peer``; one that is gone is dropped."""
        if not self._send(peer, *frames):
            self._vanished(peer, "unreachable")

    def _vanished(
        self, peer: bytes, how: str, spare: bytes | None = None
    ) -> list[tuple[int, bytes]]:
        """``peer`` is gone without ``bye``: drop it, close the connections of which it may
        have run a request, and send again the requests it had not started (see
        ``RelayState.vanish``; ``spare``'s connection is not closed); returns those."""
        if peer not in self.state.peers:
            return []  # it said bye (its requests were served), or was dropped before
        lost = self.state.vanish(peer, spare)
        closed = 0
        for source, (sender, conn_ids) in lost.close.items():
            if source < len(self.pubs):
                closed += self._close(source, sender, conn_ids)
        self._resend(lost.resend)
        log.warning(
            "worker %s is gone (%s): its credit is dropped, %d request(s) it had not started"
            " sent again, %d connection(s) with a request it had started closed",
            peer.hex(),
            how,
            len(lost.resend),
            closed,
        )
        return lost.resend

    def _resend(self, copies: list[tuple[int, bytes]]) -> None:
        """Route ``copies`` again, ahead of the messages held for want of credit."""
        late: list[list[bytes]] = [[] for _ in self._held]
        for source, frame in copies:
            if late[source] or self._held[source] or not self._forward(source, frame):
                late[source].append(frame)  # held: the rest keeps its order behind it
        for source, frames in enumerate(late):
            if frames:
                self._hold(source, frames, ahead=True)

    def _hold(self, source: int, frames: list[bytes], *, ahead: bool = False) -> None:
        """Hold ``frames`` of ``source`` until a worker grants credit (``ahead``: before those
        held already). Mongrel2's PULL is read only while nothing is held."""
        held = self._held[source]
        if self._reading[source]:
            self.poller.unregister(self.pulls[source])
            self._reading[source] = False
        if ahead:
            held.extendleft(reversed(frames))
        else:
            held.extend(frames)

    def _close(self, source: int, sender: bytes, conn_ids: list[int]) -> int:
        """Have Mongrel2 close ``conn_ids``; returns how many (0 for a sender it cannot take)."""
        try:
            messages = encode_broadcast(sender, conn_ids, b"")
        except ProtocolError as exc:
            log.warning("cannot close connections of sender %r: %s", sender, exc)
            return 0
        for message in messages:
            self.pubs[source].send(message, zmq.NOBLOCK)
        return len(conn_ids)

    def _read_workers(self) -> None:
        router = self.router
        for _ in range(BATCH):
            if self._unmapped:
                if not self._read_worker_learning():
                    return
                continue
            try:
                peer, *frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:  # an empty multipart cannot come from a ROUTER
                continue
            self._on_worker(peer, frames)

    def _read_worker_learning(self) -> bool:
        """Read one message as frames, to learn which worker a new connection's fd carries
        (``ZMQ_SRCFD``); False when there was none."""
        try:
            first, *rest = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except ValueError:  # an empty multipart cannot come from a ROUTER
            return True
        peer = first.bytes
        fd = _source_fd(first)
        if fd is None:  # this libzmq cannot tell: stop trying (closing then needs a failed send)
            self._unmapped.clear()
        elif fd in self._unmapped:
            self._unmapped.discard(fd)
            self._peer_fds[fd] = peer
        self._on_worker(peer, [frame.bytes for frame in rest])
        return True

    def _read_monitor(self) -> None:
        """A connection accepted (its worker is learnt from its first message) or closed
        (without a ``bye`` first, its worker vanished)."""
        while True:
            try:
                event = parse_monitor_message(self.monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            fd = int(event["value"])
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._unmapped.add(fd)
                continue
            self._unmapped.discard(fd)
            peer = self._peer_fds.pop(fd, None)
            if peer is not None:
                self._vanished(peer, "disconnected")

    def _on_worker(self, peer: bytes, frames: list[bytes]) -> None:
        if wire.is_bye(frames):
            known = self.state.remove(peer)
            if not known:
                self._unnumbered(peer)
            self._send_control(peer, *wire.BYE_ACK_FRAMES)
            log.info("worker %s drains (%s)", peer.hex(), "known" if known else "unknown")
            return
        if len(frames) == 1 and frames[0].startswith(wire.START):
            self._on_start(peer, frames[0])
            return
        grant = wire.parse_grant(frames[0]) if len(frames) == 1 else None
        if grant is None or not self._apply(peer, grant):
            log.warning("worker %s sent a bad message %r: ignored", peer.hex(), frames[:2])
            return
        self._release(grant.source)

    def _on_start(self, peer: bytes, frame: bytes) -> None:
        start = wire.parse_start(frame)
        if start is None:
            log.warning("worker %s sent a bad message %r: ignored", peer.hex(), frame[:40])
        elif self.state.start(peer, start.generation, start.read, start.finished):
            if self.state.resend:
                self._send_control(peer, *wire.encode_go(start.read))
        elif peer not in self.state.peers:  # numbered for a relay before this one (restarted)
            self._unnumbered(peer)

    def _unnumbered(self, peer: bytes) -> None:
        """Tell a worker this relay does not know (it dropped it as lost, or restarted) to drop
        what it read and has not had cleared: that may have been sent elsewhere. Its numbering
        comes with the ``count`` of its next grant."""
        self._send_control(peer, *wire.count_frames(self.state.resend, wire.NO_GENERATION))

    def _apply(self, peer: bytes, grant: wire.Grant) -> bool:
        new = peer not in self.state.peers
        apply = self.state.refresh if grant.idle else self.state.ready
        if not apply(peer, grant.source, grant.credits):
            return False
        if new:  # before any message: the worker numbers what it reads from here, as we do
            generation = self.state.peers[peer].generation
            self._send_control(peer, *wire.count_frames(self.state.resend, generation))
        return True

    def _release(self, source: int) -> None:
        held = self._held[source]
        if not held:
            return
        while held:
            frame = held.popleft()  # first: a worker lost on the way may hold more here
            if not self._forward(source, frame):
                held.appendleft(frame)
                return
        if not self._reading[source]:
            self.poller.register(self.pulls[source], zmq.POLLIN)
            self._reading[source] = True


def _source_fd(frame: zmq.Frame) -> int | None:
    """The fd of the connection ``frame`` came in on (``ZMQ_SRCFD``), or None."""
    try:
        return int(frame.get(ZMQ_SRCFD))
    except (zmq.ZMQError, TypeError, ValueError):
        return None


def main(
    send_specs: Sequence[str], bind: str, recv_specs: Sequence[str] = (), *, resend: bool = False
) -> int:
    """Run a relay until SIGTERM or SIGINT; return the exit status. With ``recv_specs``, the
    connections of a worker that vanishes are closed; with ``resend``, those of which it
    started nothing are not: their requests go to another worker."""
    context = zmq.Context()
    try:
        relay = Relay(send_specs, bind, context, recv_specs, resend=resend)
    except zmq.ZMQError as exc:
        log.error("cannot start the relay on %s: %s", bind, exc)
        context.destroy(linger=0)  # closes the sockets made before the failure
        return 1

    def stop(signum: int, frame: object) -> None:
        relay.stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    # USR1 reopens log files across a stack; the relay logs to stderr only: nothing to reopen.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    log.info("relay: %s -> %s%s", ", ".join(send_specs), bind, " (re-sending)" if resend else "")
    try:
        relay.run()
    finally:
        relay.close()
        context.term()
    log.info("relay exiting after %d message(s)", relay.forwarded)
    return 0
