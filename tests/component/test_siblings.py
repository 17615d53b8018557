"""The sibling notice bus over real ipc sockets (zmq.green, in this process, no Mongrel2)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import gevent
import pytest
import zmq.green as zmq

from m2bridge import siblings
from m2bridge.protocol import Credits, Disconnect

SPECS = ("tcp://127.0.0.1:9997", "tcp://127.0.0.1:8887")
DISCONNECT = b'uuid 7 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},'


@dataclass(frozen=True)
class FakeChannel:
    index: int
    send_spec: str


CHANNELS = [FakeChannel(i, spec) for i, spec in enumerate(SPECS)]


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

    def open_bus(slot, received):
        env = {siblings.NOTICE_DIR_ENV: str(directory)}
        apply = lambda channel, frame: received.append((channel, frame))  # noqa: E731
        bus = siblings.open_bus(context, slot, CHANNELS, apply, env)
        assert bus is not None
        buses.append(bus)
        return bus

    yield open_bus
    for bus in buses:
        bus.close()


def wait_until(predicate, timeout=3.0):
    with gevent.Timeout(timeout, False):
        while not predicate():
            gevent.sleep(0.01)
    return predicate()


def test_a_shared_disconnect_reaches_every_sibling_with_its_channel(open_buses):
    got1, got2, got3 = [], [], []
    bus1 = open_buses(1, got1)
    open_buses(2, got2)
    open_buses(3, got3)
    assert wait_until(lambda: bus1.siblings == 2)  # found by the periodic scan
    gevent.sleep(0.3)  # let the SUBs finish connecting (slow joiner)
    bus1.notice(1, DISCONNECT, Disconnect(b"uuid", 7), has_work=True)
    assert wait_until(lambda: got2 and got3)
    assert got2 == got3 == [(CHANNELS[1], DISCONNECT)]
    gevent.sleep(0.2)
    assert got1 == []  # never to itself, and never shared on again


def test_credits_of_a_connection_running_here_stay_here(open_buses):
    got2 = []
    bus1 = open_buses(1, [])
    bus2 = open_buses(2, got2)
    assert wait_until(lambda: bus2.siblings == 1 and bus1.siblings == 1)
    gevent.sleep(0.3)
    credits = b'uuid 7 @* 17:{"METHOD":"JSON"},43:{"type":"credits","DOWNLOAD_CREDITS":100},'
    bus1.notice(0, credits, Credits(b"uuid", 7, 100), has_work=True)
    bus1.notice(0, credits + b" ", Credits(b"uuid", 7, 100), has_work=False)
    assert wait_until(lambda: got2)
    gevent.sleep(0.2)
    assert got2 == [(CHANNELS[0], credits + b" ")]


def test_a_bad_message_on_the_bus_is_logged_and_the_bus_goes_on(
    open_buses, context, directory, caplog
):
    got = []
    bus = open_buses(1, got)
    intruder = context.socket(zmq.PUB)
    intruder.setsockopt(zmq.LINGER, 0)
    try:
        intruder.bind(f"ipc://{directory / '9.ipc'}")
        assert wait_until(lambda: bus.siblings == 1)
        gevent.sleep(0.3)
        with caplog.at_level(logging.WARNING, "m2bridge.siblings"):
            intruder.send_multipart([b"only one frame"])
            intruder.send_multipart([b"tcp://10.9.9.9:1", DISCONNECT])
            intruder.send_multipart([SPECS[0].encode(), DISCONNECT])
            assert wait_until(lambda: got)
        assert got == [(CHANNELS[0], DISCONNECT)]
        assert "expected 2 frames, got 1" in caplog.text
        assert "unknown send_spec" in caplog.text
    finally:
        intruder.close()


def test_closing_a_bus_removes_its_endpoint_and_a_restarted_slot_is_heard_again(
    open_buses, directory
):
    got1 = []
    bus1 = open_buses(1, got1)
    bus2 = open_buses(2, [])
    assert (directory / "2.ipc").exists()
    assert wait_until(lambda: bus1.siblings == 1)
    bus2.close()
    assert not (directory / "2.ipc").exists()
    again = open_buses(2, [])
    with gevent.Timeout(3, False):  # bus 1's SUB reconnects to the same path on its own
        while not got1:
            again.notice(0, DISCONNECT, Disconnect(b"uuid", 7), has_work=False)
            gevent.sleep(0.05)
    assert got1
    assert set(got1) == {(CHANNELS[0], DISCONNECT)}
    assert bus1.siblings == 1  # the same endpoint, not a second connection


def test_an_unusable_notice_dir_turns_the_bus_off_with_a_warning(context, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {siblings.NOTICE_DIR_ENV: str(blocker / "n")}
    with caplog.at_level(logging.WARNING, "m2bridge.siblings"):
        assert siblings.open_bus(context, 1, CHANNELS, print, env) is None
    assert "sibling notices off" in caplog.text
