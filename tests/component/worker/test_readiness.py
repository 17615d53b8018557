"""A worker's readiness (``zmq_worker.wait_connected``, in this process's gevent hub): ready
once every channel is connected to its Mongrel2, or a grace period after the first one is."""

from __future__ import annotations

import time
from typing import Any, cast

import gevent
import pytest
from gevent.event import Event

from m2bridge.worker.zmq_worker import wait_connected

#: Slack for the hub's scheduling on a shared machine.
SLACK = 0.5


class FakeChannel:
    """Stands for a Channel: ``wait_ready`` blocks until ``connect()``; counts who waits."""

    def __init__(self) -> None:
        self._connected = Event()
        self.waiting = 0

    def connect(self) -> None:
        self._connected.set()

    def wait_ready(self, timeout: float | None = None, warn: bool = True) -> bool:
        self.waiting += 1
        try:
            return self._connected.wait(timeout)
        finally:
            self.waiting -= 1


def timed_wait(channels: list[FakeChannel], grace: float) -> float:
    started = time.monotonic()
    wait_connected(cast(Any, channels), grace)
    return time.monotonic() - started


def test_a_single_channel_is_ready_the_moment_it_connects():
    channel = FakeChannel()
    gevent.spawn_later(0.1, channel.connect)
    assert 0.1 <= timed_wait([channel], grace=30) < 0.1 + SLACK


def test_several_channels_are_ready_once_all_are_connected_before_the_grace():
    channels = [FakeChannel(), FakeChannel()]
    gevent.spawn_later(0.05, channels[0].connect)
    gevent.spawn_later(0.2, channels[1].connect)
    assert 0.2 <= timed_wait(channels, grace=30) < 0.2 + SLACK


def test_a_channel_that_never_connects_delays_readiness_by_the_grace_only():
    channels = [FakeChannel(), FakeChannel()]
    gevent.spawn_later(0.1, channels[0].connect)
    assert 0.1 + 0.3 <= timed_wait(channels, grace=0.3) < 0.1 + 0.3 + SLACK


def test_nothing_is_ready_before_a_first_channel_connects():
    channels = [FakeChannel(), FakeChannel()]
    waiter = gevent.spawn(wait_connected, cast(Any, channels), 0.1)
    gevent.sleep(0.5)
    assert not waiter.ready()
    channels[1].connect()
    waiter.join(0.1 + SLACK)
    assert waiter.successful()


@pytest.mark.parametrize("connected", [0, 1], ids=["none connected", "one of two connected"])
def test_a_killed_wait_leaves_no_channel_waited_on(connected):
    channels = [FakeChannel(), FakeChannel()]
    for channel in channels[:connected]:
        channel.connect()
    waiter = gevent.spawn(wait_connected, cast(Any, channels), 30)
    gevent.sleep(0.1)
    assert sum(c.waiting for c in channels) == 2 - connected
    waiter.kill()
    gevent.sleep(0)
    assert [c.waiting for c in channels] == [0, 0]
