"""relay_channel.RelayChannel in this process (gevent) against a fake relay's real ROUTER.

The DEALER is a plain socket waited on through its ZMQ_FD, an edge that any send on the socket
(a grant, ``bye``) may consume: these tests check that no wake-up is lost (a message is read
right away, not at the next recheck), that the idle grant still reaches a relay started after
the worker, and that draining never blocks the other greenlets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
import zmq
import zmq.green

from m2bridge.relay import wire
from m2bridge.testing import FakeMongrel2
from m2bridge.worker import relay_channel as relay_channel_module
from m2bridge.worker.channel import READ_RECHECK
from m2bridge.worker.relay_channel import IDLE_REGRANT, REPORT_INTERVAL, RelayChannel
from m2bridge.worker.transport import Transport

#: Far below READ_RECHECK and the tick (raised in these tests): a lost wake-up shows.
WAKE_BOUND = 0.3
#: The generation of the fake relay's ``count`` (a second one is GENERATION + 1).
GENERATION = 5
ROUNDS = 300


@pytest.fixture
def relay_spec(directory):
    return f"ipc://{directory / 'relay.ipc'}"


def relay_transport(fake: FakeMongrel2, relay_spec: str) -> Transport:
    return Transport((relay_spec,), (fake.recv_spec,), relays=(relay_spec,))


def receive(channel: RelayChannel, count: int) -> list[bytes]:
    """Read ``count`` messages as the worker does: ``recv``, then what is queued."""
    frames: list[bytes] = []
    while len(frames) < count:
        frame: bytes | None = gevent.with_timeout(5, channel.recv)
        while frame is not None:
            frames.append(b"%s %r" % (frame, time.monotonic()))
            frame = channel.recv_nowait() if len(frames) < count else None
    return frames


def tick(ticks: list[float]) -> None:
    """A greenlet of its own: counts how often the hub let it run (every 10 ms)."""
    while True:
        gevent.sleep(0.01)
        ticks.append(time.monotonic())


def bound_router(transport, spec):
    """A zmq.green ROUTER bound on ``spec`` in the worker's own context (the relay's side)."""
    router = transport.context.socket(zmq.green.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(spec)
    return router


def test_a_message_sent_right_after_a_grant_is_read_at_once(monkeypatch, fake, relay_spec):
    """The relay answers every grant with a batch at once, racing the worker's next wait on
    the FD (the grant's send may take the FD's edge): with the periodic recheck out of the way,
    every message must still be read well within WAKE_BOUND."""
    monkeypatch.setattr(relay_channel_module, "RELAY_TICK", 30.0)  # only the FD wakes the reader
    monkeypatch.setattr(relay_channel_module, "IDLE_REGRANT", 30.0)
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(relay_spec)
    errors: list[BaseException] = []

    def relay() -> None:  # a thread: its sends race the worker's greenlets for real
        try:
            expected = wire.encode_grant(wire.WINDOW, 0)
            for n in range(ROUNDS):
                assert router.poll(10_000), "no grant from the worker"
                peer, grant = router.recv_multipart()
                assert grant == expected
                expected = wire.encode_grant(wire.GRANT_BATCH, 0)
                for k in range(wire.GRANT_BATCH):  # the first one the moment the grant is in
                    router.send_multipart([peer, b"%d.%d %r" % (n, k, time.monotonic())])
                    time.sleep(0.0002 * (n % 3))  # the others while the worker reads or waits
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    transport = relay_transport(fake, relay_spec)
    thread = threading.Thread(target=relay, daemon=True)
    try:
        channel = transport.channels[0]
        assert isinstance(channel, RelayChannel)
        assert channel.wait_ready(timeout=5)
        thread.start()
        frames = receive(channel, ROUNDS * wire.GRANT_BATCH)
        thread.join(5)
    finally:
        router.close(0)  # first: closing the transport terminates the context
        transport.close(linger_ms=0)
        context.term()
    assert not errors, errors
    tags = [f.split()[0] for f in frames]
    assert tags == [b"%d.%d" % (n, k) for n in range(ROUNDS) for k in range(wire.GRANT_BATCH)]
    delays = [float(f.split()[2]) - float(f.split()[1]) for f in frames]
    assert max(delays) < WAKE_BOUND, sorted(delays)[-5:]


def test_the_idle_grant_reaches_a_relay_started_after_the_worker(fake, relay_spec):
    transport = relay_transport(fake, relay_spec)
    channel = transport.channels[0]
    router = transport.context.socket(zmq.green.ROUTER)  # zmq.green: waits let the worker run
    router.setsockopt(zmq.LINGER, 0)
    try:
        assert channel.wait_ready(timeout=5)
        receiver = gevent.spawn(channel.recv)
        gevent.sleep(0.3)  # the worker waits, its first grant queued for a relay not there
        router.bind(relay_spec)
        started = time.monotonic()
        grants = []
        while wire.encode_grant(wire.WINDOW, 0, idle=True) not in grants:
            with gevent.Timeout(IDLE_REGRANT + 3):
                peer, grant = router.recv_multipart()
            grants.append(grant)
        assert time.monotonic() - started < IDLE_REGRANT + 2
        router.send_multipart([peer, b"routed after the idle grant"])
        assert receiver.get(timeout=WAKE_BOUND) == b"routed after the idle grant"
    finally:
        router.close(0)  # first: closing the transport terminates the context
        transport.close(linger_ms=0)


def test_draining_reads_up_to_the_ack_without_blocking_other_greenlets(
    monkeypatch, fake, relay_spec
):
    monkeypatch.setattr(relay_channel_module, "BYE_ACK_TIMEOUT", 0.5)
    transport = relay_transport(fake, relay_spec)
    channel = transport.channels[0]
    router = bound_router(transport, relay_spec)
    ticks: list[float] = []
    ticker = gevent.spawn(tick, ticks)
    try:
        assert channel.wait_ready(timeout=5)
        with gevent.Timeout(5):
            peer, _ = router.recv_multipart()  # the first grant

        def relay() -> None:
            assert router.recv_multipart() == [peer, wire.BYE]
            gevent.sleep(0.2)  # the worker waits for the rest meanwhile
            router.send_multipart([peer, b"last one"])
            router.send_multipart([peer, *wire.BYE_ACK_FRAMES])

        acker = gevent.spawn(relay)
        channel.start_draining()
        before = len(ticks)
        assert channel.recv_nowait() == b"last one"
        assert channel.recv_nowait() is None  # the ack: nothing more will come
        assert len(ticks) - before > 5  # the other greenlets ran while it waited
        acker.get(timeout=1)
        assert channel.recv_nowait() is None
    finally:
        ticker.kill()
        router.close(0)  # first: closing the transport terminates the context
        transport.close(linger_ms=0)


def test_draining_gives_up_after_the_ack_timeout(monkeypatch, fake, relay_spec):
    monkeypatch.setattr(relay_channel_module, "BYE_ACK_TIMEOUT", 0.5)
    transport = relay_transport(fake, relay_spec)
    channel = transport.channels[0]
    router = bound_router(transport, relay_spec)  # reads the bye, never acks it
    ticks: list[float] = []
    ticker = gevent.spawn(tick, ticks)
    try:
        assert channel.wait_ready(timeout=5)
        channel.start_draining()
        started = time.monotonic()
        assert channel.recv_nowait() is None
        assert 0.5 <= time.monotonic() - started < 0.5 + READ_RECHECK
        assert len(ticks) > 20  # the other greenlets ran while it waited
    finally:
        ticker.kill()
        router.close(0)  # first: closing the transport terminates the context
        transport.close(linger_ms=0)


def test_one_relay_per_front_end_each_channel_grants_its_relay_source_0(tmp_path):
    """Two front ends (a Mongrel2 and a relay each): the worker's channels keep their own
    index (the worker's connection tables key on it) and each grants its relay source 0."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    fronts = [FakeMongrel2(tmp_path / name) for name in ("a", "b")]
    relays = tuple(f"ipc://{tmp_path / name / 'relay.ipc'}" for name in ("a", "b"))
    transport = Transport(relays, tuple(f.recv_spec for f in fronts), relays=relays)
    routers = [bound_router(transport, spec) for spec in relays]
    try:
        channels = transport.channels
        assert [(c.index, c.send_spec) for c in channels] == [(0, relays[0]), (1, relays[1])]
        assert all(c.wait_ready(timeout=5) for c in channels)
        for router, channel in zip(routers, channels, strict=True):
            with gevent.Timeout(5):
                peer, grant = router.recv_multipart()
            assert grant == wire.encode_grant(wire.WINDOW, 0)
            router.send_multipart([peer, b"for channel %d" % channel.index])
            assert gevent.with_timeout(5, channel.recv) == b"for channel %d" % channel.index
    finally:
        for router in routers:
            router.close(0)
        transport.close(linger_ms=0)
        for front in fronts:
            front.close()


def grant_and_count(router, *, gated: bool = True) -> bytes:
    """The worker's first grant, answered with the relay's ``count`` (``count start`` when
    ``gated``): the worker's identity."""
    with gevent.Timeout(5):
        peer, grant = router.recv_multipart()
    assert grant == wire.encode_grant(wire.WINDOW, 0)
    router.send_multipart([peer, *wire.count_frames(gated, GENERATION)])
    return bytes(peer)


def next_start(router) -> bytes:
    """The next ``start`` the worker sends (grants skipped)."""
    with gevent.Timeout(5):
        while True:
            _, frame = router.recv_multipart()
            if frame.startswith(wire.START):
                return bytes(frame)


@contextlib.contextmanager
def counted(
    fake: FakeMongrel2, relay_spec: str, *, gated: bool = True
) -> Iterator[tuple[RelayChannel, Any, bytes]]:
    """A worker's relay channel, a fake relay's ROUTER, and the worker's identity there after
    the relay's ``count`` (``count start`` when ``gated``)."""
    transport = relay_transport(fake, relay_spec)
    channel = transport.channels[0]
    assert isinstance(channel, RelayChannel)
    router = bound_router(transport, relay_spec)
    try:
        assert channel.wait_ready(timeout=5)
        yield channel, router, grant_and_count(router, gated=gated)
    finally:
        router.close(0)
        transport.close(linger_ms=0)


@pytest.fixture
def gated(fake, relay_spec):
    """``counted``, gated."""
    with counted(fake, relay_spec) as pair:
        yield pair


def conn_of(frame: bytes | None) -> bytes | None:
    return None if frame is None else frame.split()[1]


def test_a_gated_worker_runs_nothing_before_the_relays_go(gated):
    channel, router, peer = gated
    for conn_id in (1, 2, 3):
        router.send_multipart([peer, b"uuid %d / 2:{},0:," % conn_id])
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 3"
    gevent.sleep(0.2)
    assert not receiver.ready()  # read, not cleared
    router.send_multipart([peer, *wire.encode_go(2)])
    assert conn_of(receiver.get(timeout=WAKE_BOUND)) == b"1"
    assert conn_of(channel.recv_nowait()) == b"2"
    assert channel.recv_nowait() is None  # the third waits for its go
    router.send_multipart([peer, *wire.encode_go(3)])
    assert conn_of(gevent.with_timeout(WAKE_BOUND, channel.recv)) == b"3"
    assert channel.read_seq == 3


def test_a_go_sent_right_after_each_start_is_read_at_once(monkeypatch, fake, relay_spec):
    """The relay answers each ``start`` at once, racing the worker's next wait on the FD (the
    start's send may take the FD's edge): with the periodic recheck out of the way, every
    message must still come out well within WAKE_BOUND."""
    monkeypatch.setattr(relay_channel_module, "RELAY_TICK", 30.0)  # only the FD wakes the reader
    with counted(fake, relay_spec) as (channel, router, peer):
        for n in range(ROUNDS // 3):
            receiver = gevent.spawn(channel.recv)
            gevent.sleep(0.001 * (n % 3))  # the message comes while it waits, or before
            started = time.monotonic()
            router.send_multipart([peer, b"uuid %d / 2:{},0:," % n])
            assert next_start(router) == b"start 5 %d" % (n + 1)
            router.send_multipart([peer, *wire.encode_go(n + 1)])
            assert conn_of(receiver.get(timeout=WAKE_BOUND)) == b"%d" % n
            assert time.monotonic() - started < WAKE_BOUND


def test_finished_connections_are_reported_with_the_relays_numbers_when_nothing_is_left(
    gated,
):
    channel, router, peer = gated
    for conn_id in (5, 7):
        router.send_multipart([peer, b"uuid %d / 2:{},0:," % conn_id])
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 2"
    router.send_multipart([peer, *wire.encode_go(2)])
    assert conn_of(receiver.get(timeout=WAKE_BOUND)) == b"5"
    assert conn_of(channel.recv_nowait()) == b"7"
    receiver = gevent.spawn(channel.recv)  # waits: nothing is left to read
    gevent.sleep(REPORT_INTERVAL * 2)
    assert channel.done is not None
    channel.done.append((7, 2))  # as the connection table does
    channel.done_pending()
    assert next_start(router) == b"start 5 2 7:2"  # at once, nothing new read
    channel.kept = {(0, 5)}  # an open WebSocket: never reported
    gevent.sleep(REPORT_INTERVAL * 2)
    channel.done.append((5, 1))
    channel.done_pending()
    assert next_start(router) == b"start 5 2"
    receiver.kill()


def test_the_relays_count_drops_what_it_had_not_cleared_and_numbers_from_there(gated):
    channel, router, peer = gated
    router.send_multipart([peer, b"uuid 1 / 2:{},0:,"])
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 1"
    router.send_multipart([peer, *wire.encode_go(1)])
    assert conn_of(receiver.get(timeout=WAKE_BOUND)) == b"1"
    router.send_multipart([peer, b"uuid 2 / 2:{},0:,"])  # read, then the relay forgets us
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 2"
    router.send_multipart([peer, *wire.count_frames(True, GENERATION + 1)])
    router.send_multipart([peer, b"uuid 3 / 2:{},0:,"])
    assert next_start(router) == b"start 6 1"  # numbered from the count, of its generation
    router.send_multipart([peer, *wire.encode_go(1)])
    assert conn_of(receiver.get(timeout=WAKE_BOUND)) == b"3"  # 2 never runs here
    assert channel.done is not None
    channel.done.extend([(1, 1), (3, channel.read_seq)])  # 1 was numbered before the count
    channel.done_pending()
    receiver = gevent.spawn(channel.recv)
    gevent.sleep(REPORT_INTERVAL * 2)
    channel.done_pending()
    assert next_start(router) == b"start 6 1 3:1"
    receiver.kill()


def test_draining_runs_what_was_read_once_the_relay_acks_the_bye(gated):
    channel, router, peer = gated
    for conn_id in (1, 2):
        router.send_multipart([peer, b"uuid %d / 2:{},0:," % conn_id])
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 2"
    receiver.kill()  # stopping: the receiver is killed while it waits for go
    channel.start_draining()
    with gevent.Timeout(5):
        assert router.recv_multipart()[1] == wire.BYE
    router.send_multipart([peer, b"uuid 3 / 2:{},0:,"])  # routed before the bye was read
    router.send_multipart([peer, *wire.BYE_ACK_FRAMES])
    drained = []
    while (frame := gevent.with_timeout(5, channel.recv_nowait)) is not None:
        drained.append(conn_of(frame))
    assert drained == [b"1", b"2", b"3"]


def test_a_worker_the_relay_had_dropped_runs_nothing_uncleared_when_it_drains(gated):
    """The relay answers the bye with a ``count`` first: it did not know this worker any more
    (dropped as lost), so what it had sent may have gone to another worker."""
    channel, router, peer = gated
    router.send_multipart([peer, b"uuid 1 / 2:{},0:,"])
    receiver = gevent.spawn(channel.recv)
    assert next_start(router) == b"start 5 1"
    receiver.kill()
    channel.start_draining()
    with gevent.Timeout(5):
        assert router.recv_multipart()[1] == wire.BYE
    router.send_multipart([peer, *wire.count_frames(True, wire.NO_GENERATION)])
    router.send_multipart([peer, *wire.BYE_ACK_FRAMES])
    assert gevent.with_timeout(5, channel.recv_nowait) is None


def test_messages_after_a_plain_count_run_at_once(gated):
    """A relay restarted without ``--resend`` says plain ``count``: what follows it in the
    same read is not held for a ``go`` that will never come."""
    channel, router, peer = gated
    router.send_multipart([peer, *wire.count_frames(False, GENERATION + 1)])
    for conn_id in (1, 2):
        router.send_multipart([peer, b"uuid %d / 2:{},0:," % conn_id])
    assert conn_of(gevent.with_timeout(5, channel.recv)) == b"1"
    assert conn_of(gevent.with_timeout(5, channel.recv)) == b"2"
    assert channel.done is None


def test_a_worker_told_plain_count_runs_at_once_and_reports_nothing(fake, relay_spec):
    with counted(fake, relay_spec, gated=False) as (channel, router, peer):
        router.send_multipart([peer, b"uuid 4 / 2:{},0:,"])
        assert conn_of(gevent.with_timeout(WAKE_BOUND, channel.recv)) == b"4"
        assert channel.done is None
