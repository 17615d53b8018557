"""The console's collector (m2bridge/web/server.py ``Collector``) with a fake client: each poll
adds a point and publishes an update; an outage is shown and logged once, and its end too."""

from __future__ import annotations

import logging
from typing import Any

import gevent

from m2bridge.errors import ControlError
from m2bridge.supervisor.control import Errno
from m2bridge.web.hub import Hub
from m2bridge.web.server import Collector


class FakeClient:
    endpoint = "ipc:///fake/m2bridge.ctl"

    def __init__(self) -> None:
        self.served = 0
        self.down = False
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def call(self, command, args=None):
        self.calls.append((command, args))
        if self.down:
            raise ControlError("no supervisor at ipc:///fake/m2bridge.ctl", Errno.UNREACHABLE)
        if command == "stats":
            self.served += 10
            process = {"pid": 7, "wid": 1, "cpu": 2.0, "rss": 100, "served": self.served}
            return {"watchers": [{"name": "hello", "processes": [process]}]}
        if command == "status":
            row = {"name": "hello", "state": "active", "numprocesses": 1, "running": 1}
            return {"watchers": [{**row, "ready": 1, "stopping": 0, "reason": ""}]}
        if command == "dstats":
            return {"pid": 1, "stack": "demo"}
        return {"name": args["name"], "numprocesses": 2}


def collector_with_stream():
    client, hub = FakeClient(), Hub()
    collector = Collector(client, hub, interval=0.05)
    stream = collector.subscribe()
    return client, collector, stream


def test_before_the_first_poll_the_state_says_so():
    _, _, stream = collector_with_stream()
    name, data = next(stream)
    assert name == "history"
    assert data["points"] == []
    assert data["state"]["error"] == "not polled yet"
    assert data["state"]["at"] is None
    assert data["state"]["subscribers"] == 1


def test_each_poll_adds_a_point_and_publishes_an_update():
    _, collector, stream = collector_with_stream()
    next(stream)
    collector.poll()
    collector.poll()
    first, second = next(stream), next(stream)
    assert first[0] == second[0] == "update"
    assert first[1]["point"]["watchers"]["hello"]["rps"] is None
    assert second[1]["point"]["watchers"]["hello"]["rps"] > 0
    state = collector.state()
    assert state["error"] is None
    assert state["supervisor"] == {"pid": 1, "stack": "demo"}
    assert state["health"] == {"healthy": True, "problems": []}
    assert state["point"] == second[1]["point"]
    assert len(collector.history.points()) == 2


def test_an_outage_keeps_the_last_data_and_is_logged_once(caplog):
    client, collector, stream = collector_with_stream()
    next(stream)
    collector.poll()
    next(stream)
    client.down = True
    with caplog.at_level(logging.INFO, logger="m2bridge.web"):
        for _ in range(3):
            collector.poll()
        update = next(stream)[1]
        assert update["point"] is None
        assert update["state"]["error"] == "no supervisor at ipc:///fake/m2bridge.ctl"
        assert update["state"]["stats"]["watchers"][0]["name"] == "hello"  # the last data
        client.down = False
        collector.poll()
    assert caplog.text.count("no supervisor at") == 1
    assert caplog.text.count("answers again") == 1
    assert collector.state()["error"] is None


def test_commands_go_to_the_client():
    client, collector, _ = collector_with_stream()
    assert collector.command("incr", {"name": "hello"}) == {"name": "hello", "numprocesses": 2}
    assert client.calls == [("incr", {"name": "hello"})]


def test_run_polls_every_interval():
    client, collector, _ = collector_with_stream()
    poller = gevent.spawn(collector.run)
    gevent.sleep(0.28)
    poller.kill()
    polls = sum(1 for command, _ in client.calls if command == "stats")
    assert 4 <= polls <= 7


def test_an_answer_of_an_unexpected_shape_does_not_end_the_polls(caplog):
    client, collector, _ = collector_with_stream()
    bad_answers = [{"watchers": [{"no name": 1}]}] * 3
    real = client.call

    def call(command, args=None):
        if command == "stats" and bad_answers:
            return bad_answers.pop()
        return real(command, args)

    client.call = call
    poller = gevent.spawn(collector.run)
    try:
        with caplog.at_level(logging.ERROR, logger="m2bridge.web"):
            gevent.sleep(0.4)
    finally:
        poller.kill()
    assert caplog.text.count("poll failed") == 1  # once, not once per poll
    assert collector.error is None  # polls went on, and the good answers came through
    assert len(collector.history.points()) >= 2
