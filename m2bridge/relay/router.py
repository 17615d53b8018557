"""The relay process (``m2bridge relay``): Mongrel2's PUSH -> credit-based ROUTER -> workers.

Why: a worker whose PULL is connected straight to Mongrel2's PUSH cannot stop without losing
what libzmq holds on that connection (docs/reliability.md). Here the relay holds the PULL(s)
and workers connect a DEALER to its ROUTER (``ipc://``). Routing is ``relay.state``; the words
between relay and worker are ``relay.wire``.

A worker that vanished is found by ``ROUTER_MANDATORY``: sending to it fails, it is dropped
and the message goes to another worker. Plain zmq, no gevent: one thread, one poller,
batches read with NOBLOCK, no per-message logging.
"""

from __future__ import annotations

import collections
import logging
import signal
from collections.abc import Sequence
from typing import Any

import zmq
from zmq.backend import Socket as BackendSocket

from m2bridge.relay import wire
from m2bridge.relay.state import RelayState
from m2bridge.zmqread import read_nowait

log = logging.getLogger("m2bridge.relay.router")

#: Messages read from one socket before looking at the others.
BATCH = 256
#: pyzmq's compiled send: the pure-Python wrappers of ``zmq.Socket`` (routing ids, groups,
#: ``send_multipart``'s loop) cost more than the routing decision itself.
_raw_send = BackendSocket.send
_MORE = zmq.SNDMORE | zmq.NOBLOCK
#: Poll timeout (ms): how quickly a stop request is seen.
POLL_MS = 200
#: Linger (ms) of the ROUTER at exit: messages already routed get this long to leave.
CLOSE_LINGER_MS = 1000


class Relay:
    """PULL sockets connected to Mongrel2 and one ROUTER bound for workers."""

    def __init__(self, send_specs: Sequence[str], bind: str, context: zmq.Context[Any]) -> None:
        if not send_specs:
            raise ValueError("a relay needs at least one --send-spec")
        self.state = RelayState(len(send_specs))
        self.forwarded = 0
        self.stopping = False
        self._held: list[collections.deque[bytes]] = [collections.deque() for _ in send_specs]
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDHWM, 0)  # credit bounds what waits for each worker
        self.router.bind(bind)
        self.pulls = []
        for spec in send_specs:
            pull = context.socket(zmq.PULL)
            pull.setsockopt(zmq.LINGER, 0)
            pull.connect(spec)
            self.pulls.append(pull)
        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)
        for pull in self.pulls:
            self.poller.register(pull, zmq.POLLIN)

    def run(self) -> None:
        """Route until ``stopping`` is set (SIGTERM/SIGINT in ``main``)."""
        while not self.stopping:
            self.step(POLL_MS)

    def step(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for input and handle one batch of each ready socket."""
        events = dict(self.poller.poll(timeout_ms))
        if self.router in events:
            self._read_workers()
        for source, pull in enumerate(self.pulls):
            if pull in events and not self._held[source]:
                self._read_mongrel2(source, pull)

    def close(self) -> None:
        """Close every socket (routed messages get ``CLOSE_LINGER_MS`` to leave)."""
        for pull in self.pulls:
            pull.close(0)
        self.router.close(CLOSE_LINGER_MS)

    def _read_mongrel2(self, source: int, pull: zmq.Socket[Any]) -> None:
        for _ in range(BATCH):
            frame = read_nowait(pull)  # None when empty, without pyzmq's zmq.Again
            if frame is None:
                return
            if not self._forward(source, frame):
                self._held[source].append(frame)  # no credit anywhere: stop reading
                self.poller.unregister(pull)
                return

    def _forward(self, source: int, frame: bytes) -> bool:
        """Send ``frame`` where ``relay_state`` says; False: nobody has credit (hold it)."""
        while True:
            targets = self.state.route(source, frame)
            if targets is None:
                return False
            sent = [self._send(peer, frame) for peer in targets]  # every one, even after a failure
            if all(sent) or len(targets) != 1:
                self.forwarded += 1
                return True  # a lost copy of a broadcast notice is not re-sent

    def _send(self, peer: bytes, *frames: bytes) -> bool:
        try:
            _raw_send(self.router, peer, _MORE)
            for frame in frames[:-1]:
                _raw_send(self.router, frame, _MORE)
            _raw_send(self.router, frames[-1], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise
            self.state.remove(peer)
            log.warning("worker %s is gone (%s): its credit is dropped", peer.hex(), exc)
            return False
        return True

    def _read_workers(self) -> None:
        for _ in range(BATCH):
            try:
                peer, *frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:  # an empty multipart cannot come from a ROUTER
                continue
            self._on_worker(peer, frames)

    def _on_worker(self, peer: bytes, frames: list[bytes]) -> None:
        if wire.is_bye(frames):
            known = self.state.remove(peer)
            self._send(peer, *wire.BYE_ACK_FRAMES)
            log.info("worker %s drains (%s)", peer.hex(), "known" if known else "unknown")
            return
        grant = wire.parse_grant(frames[0]) if len(frames) == 1 else None
        if grant is None or not self._apply(peer, grant):
            log.warning("worker %s sent a bad message %r: ignored", peer.hex(), frames[:2])
            return
        self._release(grant.source)

    def _apply(self, peer: bytes, grant: wire.Grant) -> bool:
        apply = self.state.refresh if grant.idle else self.state.ready
        return apply(peer, grant.source, grant.credits)

    def _release(self, source: int) -> None:
        held = self._held[source]
        if not held:
            return
        while held and self._forward(source, held[0]):
            held.popleft()
        if not held:
            self.poller.register(self.pulls[source], zmq.POLLIN)


def main(send_specs: Sequence[str], bind: str) -> int:
    """Run a relay until SIGTERM or SIGINT; return the exit status."""
    context = zmq.Context()
    try:
        relay = Relay(send_specs, bind, context)
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
    log.info("relay: %s -> %s", ", ".join(send_specs), bind)
    try:
        relay.run()
    finally:
        relay.close()
        context.term()
    log.info("relay exiting after %d message(s)", relay.forwarded)
    return 0
