"""The sibling notice bus over real ipc sockets (zmq.green, in this process, no Mongrel2)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import gevent
import pytest
import zmq.green as zmq

from m2bridge import environment
from m2bridge.testing import make_request_frame
from m2bridge.wire.protocol import Credits, Disconnect, parse_message
from m2bridge.worker import siblings
from tests.helpers.waiting import wait_until

SPECS = ("tcp://127.0.0.1:9997", "tcp://127.0.0.1:8887")
DISCONNECT = b'uuid 7 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},'
CREDITS = b'uuid 7 @* 42:16:DOWNLOAD_CREDITS,3:100,6:METHOD,4:JSON,}18:{"type":"credits"},'


@dataclass(frozen=True)
class FakeChannel:
    index: int
    send_spec: str


CHANNELS = [FakeChannel(i, spec) for i, spec in enumerate(SPECS)]
Received = tuple[FakeChannel, bytes]  # what a bus applied: the notice's channel and frame


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.term()


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / "n"
    path.mkdir()
    return path


@pytest.fixture
def open_buses(context, directory):
    buses = []

    def open_bus(slot, received, holds=siblings._holds_nothing):
        env = {environment.NOTICE_DIR: str(directory)}
        apply = lambda channel, frame: received.append((channel, frame))  # noqa: E731
        bus = siblings.open_bus(context, slot, CHANNELS, apply, env, holds=holds)
        assert bus is not None
        buses.append(bus)
        return bus

    yield open_bus
    for bus in buses:
        bus.close()


@pytest.fixture
def subscriptions(caplog):
    """How many sibling subscriptions the buses' XPUBs have seen so far: the readiness signal
    (a notice published after a sibling's subscription reached the XPUB is not lost)."""
    caplog.set_level(logging.DEBUG, "m2bridge.worker.siblings")
    return lambda: sum("a sibling subscribed" in r.getMessage() for r in caplog.records)


def disconnect_of(conn_id):
    return DISCONNECT.replace(b" 7 ", b" %d " % conn_id)


def test_a_shared_disconnect_reaches_every_sibling_with_its_channel_and_never_comes_back(
    open_buses, subscriptions
):
    got1: list[Received] = []
    got2: list[Received] = []
    got3: list[Received] = []
    bus1 = open_buses(1, got1)
    bus2 = open_buses(2, got2)
    bus3 = open_buses(3, got3)
    assert wait_until(
        lambda: subscriptions() == 6, sleep=gevent.sleep
    )  # each bus heard by the two others
    assert bus1.siblings == 2
    bus1.notice(1, DISCONNECT, Disconnect(b"uuid", 7), has_work=True)
    assert wait_until(lambda: got2 and got3, sleep=gevent.sleep)
    assert got2 == got3 == [(CHANNELS[1], DISCONNECT)]
    # Positive control: bus 1 does hear buses 2 and 3, on the very pipes a notice shared on
    # again would have taken, and after it (their markers left once they had the notice).
    marker2, marker3 = disconnect_of(8), disconnect_of(9)
    bus2.notice(0, marker2, Disconnect(b"uuid", 8), has_work=False)
    bus3.notice(0, marker3, Disconnect(b"uuid", 9), has_work=False)
    assert wait_until(lambda: len(got1) >= 2, sleep=gevent.sleep)
    assert sorted(got1) == [(CHANNELS[0], marker2), (CHANNELS[0], marker3)]


START = make_request_frame(
    "/up",
    conn_id=24,
    method="POST",
    sender=b"uuid",
    headers={"x-mongrel2-upload-start": "/tmp/upload.a", "content-length": "30720"},
)


def test_an_upload_start_shared_before_a_sibling_listened_reaches_it_once_it_subscribes(
    open_buses,
):
    """The start went out while no sibling listened (lost); the sibling that connects later
    gets it again, because its ``done`` may be dealt to that sibling."""
    held: list[tuple[int, int, str]] = []

    def holds(channel_index, conn_id, path):
        held.append((channel_index, conn_id, path))
        return True

    bus1 = open_buses(1, [], holds=holds)
    event = parse_message(START)
    bus1.notice(1, START, event, has_work=False)
    got2: list[Received] = []
    open_buses(2, got2)
    assert wait_until(lambda: got2, sleep=gevent.sleep)
    assert got2 == [(CHANNELS[1], START)]
    assert held == [(1, 24, "/tmp/upload.a")]


def test_a_start_no_longer_awaited_is_not_replayed(open_buses, subscriptions):
    asked: list[tuple[int, int, str]] = []

    def holds(channel_index, conn_id, path):
        asked.append((channel_index, conn_id, path))
        return False  # served here

    bus1 = open_buses(1, [], holds=holds)
    bus1.notice(0, START, parse_message(START), has_work=False)
    got2: list[Received] = []
    bus2 = open_buses(2, got2)
    assert wait_until(
        lambda: subscriptions() == 2, sleep=gevent.sleep
    )  # bus 2 subscribed: replay decided
    assert bus1.siblings == bus2.siblings == 1
    assert asked == [(0, 24, "/tmp/upload.a")]  # the start was considered, and not held
    marker = disconnect_of(8)  # leaves after any replay, on the same pipe
    bus1.notice(0, marker, Disconnect(b"uuid", 8), has_work=False)
    assert wait_until(lambda: got2, sleep=gevent.sleep)
    assert got2 == [(CHANNELS[0], marker)]


def test_a_disconnect_drops_the_start_from_the_replay(open_buses, subscriptions):
    asked: list[tuple[int, int, str]] = []

    def holds(channel_index, conn_id, path):
        asked.append((channel_index, conn_id, path))
        return True

    bus1 = open_buses(1, [], holds=holds)
    bus1.notice(0, START, parse_message(START), has_work=False)
    disconnect = disconnect_of(24)
    bus1.notice(0, disconnect, parse_message(disconnect), has_work=False)
    got2: list[Received] = []
    bus2 = open_buses(2, got2)
    assert wait_until(
        lambda: subscriptions() == 2, sleep=gevent.sleep
    )  # bus 2 subscribed: replay done
    assert bus2.siblings == 1
    marker = disconnect_of(8)  # leaves after any replay, on the same pipe
    bus1.notice(0, marker, Disconnect(b"uuid", 8), has_work=False)
    assert wait_until(lambda: got2, sleep=gevent.sleep)
    # Neither the start nor the disconnect (it went out before bus 2 listened), only the marker.
    assert got2 == [(CHANNELS[0], marker)]
    assert asked == []  # nothing was left to replay


def test_credits_of_a_connection_running_here_stay_here(open_buses, subscriptions):
    got2: list[Received] = []
    bus1 = open_buses(1, [])
    bus2 = open_buses(2, got2)
    assert wait_until(lambda: subscriptions() == 2, sleep=gevent.sleep)
    assert bus1.siblings == bus2.siblings == 1
    other = CREDITS.replace(b" 7 ", b" 8 ")
    bus1.notice(0, CREDITS, Credits(b"uuid", 7, 100), has_work=True)
    bus1.notice(0, other, Credits(b"uuid", 8, 100), has_work=False)  # shared, and after it
    assert wait_until(lambda: got2, sleep=gevent.sleep)
    assert got2 == [(CHANNELS[0], other)]


def test_a_bad_message_on_the_bus_is_logged_and_the_bus_goes_on(
    open_buses, context, directory, caplog
):
    got: list[Received] = []
    bus = open_buses(1, got)
    intruder = context.socket(zmq.XPUB)  # an XPUB, to see the bus subscribe
    intruder.setsockopt(zmq.LINGER, 0)
    try:
        intruder.bind(f"ipc://{directory / '9.ipc'}")
        assert intruder.poll(5000), "the bus never subscribed to the intruder"
        assert intruder.recv() == b"\x01"
        assert bus.siblings == 1
        with caplog.at_level(logging.WARNING, "m2bridge.worker.siblings"):
            intruder.send_multipart([b"only one frame"])
            intruder.send_multipart([b"tcp://10.9.9.9:1", DISCONNECT])
            intruder.send_multipart([SPECS[0].encode(), DISCONNECT])  # good, and last
            assert wait_until(lambda: got, sleep=gevent.sleep)
        assert got == [(CHANNELS[0], DISCONNECT)]
        assert "expected 2 frames, got 1" in caplog.text
        assert "unknown send_spec" in caplog.text
    finally:
        intruder.close()


def test_closing_a_bus_removes_its_endpoint_and_a_restarted_slot_is_heard_again(
    open_buses, directory, subscriptions
):
    got1: list[Received] = []
    bus1 = open_buses(1, got1)
    bus2 = open_buses(2, [])
    assert (directory / "2.ipc").exists()
    assert wait_until(
        lambda: subscriptions() == 2, sleep=gevent.sleep
    )  # 1 heard by 2, 2 heard by 1
    assert bus1.siblings == 1
    bus2.close()
    assert not (directory / "2.ipc").exists()
    again = open_buses(2, [])
    # Bus 1's SUB reconnects to the same path on its own: the new bus 2 sees it subscribe.
    assert wait_until(lambda: subscriptions() == 4, sleep=gevent.sleep)
    again.notice(0, DISCONNECT, Disconnect(b"uuid", 7), has_work=False)
    assert wait_until(lambda: got1, sleep=gevent.sleep)
    assert got1 == [(CHANNELS[0], DISCONNECT)]
    assert bus1.siblings == 1  # the same endpoint, not a second connection


def test_an_unusable_notice_dir_turns_the_bus_off_with_a_warning(context, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {environment.NOTICE_DIR: str(blocker / "n")}
    with caplog.at_level(logging.WARNING, "m2bridge.worker.siblings"):
        assert siblings.open_bus(context, 1, CHANNELS, print, env) is None
    assert "sibling notices off" in caplog.text


# ---------------------------------------------------------------------- the dispatcher's side


@dataclass
class RecordingChannel:
    """A transport channel stand-in: replies are recorded."""

    index: int = 0
    recv_spec: str = "tcp://127.0.0.1:9996"
    reply_ident: bytes | None = None
    sent: list[bytes] = field(default_factory=list)

    def send(self, message):
        self.sent.append(message)


@dataclass
class RecordingBus:
    shared: list[tuple[int, bytes, str, bool]] = field(default_factory=list)

    def notice(self, channel_index, frame, event, has_work):
        self.shared.append((channel_index, frame, type(event).__name__, has_work))


class App:
    """A WSGI app that runs until cancelled, recording what it saw."""

    def __init__(self):
        self.environs = []
        self.cancelled = []

    def __call__(self, environ, start_response):
        self.environs.append(environ)
        try:
            gevent.sleep(10)  # work that only a cancellation stops
        except gevent.GreenletExit as exc:
            self.cancelled.append(type(exc).__name__)
            raise
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]


@pytest.fixture
def app():
    return App()


@pytest.fixture
def dispatcher(app):
    from gevent.pool import Pool

    from m2bridge.config import WorkerConfig
    from m2bridge.worker.connection import ConnectionTable
    from m2bridge.worker.dispatch import Dispatcher
    from m2bridge.worker.stats import WorkerStats

    config = WorkerConfig(app="x:app", cancel_grace=0)
    pool = Pool(10)
    dispatcher = Dispatcher(app, config, ConnectionTable(pool), WorkerStats())
    yield dispatcher
    pool.kill()


def start_request(dispatcher, app, channel):
    dispatcher.dispatch(channel, make_request_frame("/", conn_id=7, sender=b"uuid"))
    assert wait_until(lambda: app.environs, sleep=gevent.sleep)  # the app runs
    assert dispatcher.stats.in_flight == 1


def test_a_sibling_disconnect_cancels_the_request_running_here(dispatcher, app):
    channel = RecordingChannel()
    start_request(dispatcher, app, channel)
    dispatcher.on_sibling_notice(channel, DISCONNECT)
    assert wait_until(lambda: dispatcher.stats.in_flight == 0, sleep=gevent.sleep)
    assert app.cancelled == ["ClientGone"]  # thrown into the app, not finished on its own
    assert app.environs[0]["m2bridge.disconnected"].is_set()
    assert not dispatcher.table.has_work(0, 7)
    assert channel.sent == []  # the client is gone: not even a close


def test_a_bad_sibling_notice_is_logged_and_changes_nothing(dispatcher, app, caplog):
    channel = RecordingChannel()
    start_request(dispatcher, app, channel)
    with caplog.at_level(logging.WARNING, "m2bridge.worker.dispatch"):
        dispatcher.on_sibling_notice(channel, b"garbage")
        dispatcher.on_sibling_notice(channel, make_request_frame("/", conn_id=7, sender=b"u"))
    assert "malformed sibling notice ignored" in caplog.text
    assert "sibling sent a Request, not a notice: ignored" in caplog.text
    gevent.sleep(0)  # a cancellation (grace 0) would have been thrown in by now
    assert not app.environs[0]["m2bridge.disconnected"].is_set()
    assert (dispatcher.stats.in_flight, app.cancelled, channel.sent) == (1, [], [])
    # Positive control: the same observations do change on a good notice.
    dispatcher.on_sibling_notice(channel, DISCONNECT)
    assert app.environs[0]["m2bridge.disconnected"].is_set()
    assert wait_until(lambda: app.cancelled == ["ClientGone"], sleep=gevent.sleep)
    assert dispatcher.stats.in_flight == 0


def test_the_dispatcher_shares_notices_from_mongrel2_but_not_requests(dispatcher, app):
    bus = RecordingBus()
    dispatcher.siblings = bus
    channel = RecordingChannel(index=1)
    start_request(dispatcher, app, channel)
    dispatcher.dispatch(channel, CREDITS)
    dispatcher.dispatch(channel, DISCONNECT)
    assert bus.shared == [
        (1, CREDITS, "Credits", True),
        (1, DISCONNECT, "Disconnect", True),
    ]
