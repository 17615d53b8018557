"""The statsd push, received on a real UDP socket."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from m2bridge.supervisor import statsd
from m2bridge.supervisor.statsd import StatsdPusher, pack


def data(served: int) -> dict[str, Any]:
    process = {"cpu": 2.5, "rss": 100}
    totals = {"served": served, "errors": 1, "rejected": 0, "timed_out": 0, "in_flight": 3}
    return {
        "watchers": [
            {"name": "hello", "processes": [process, {"cpu": None, "rss": None}], "totals": totals},
            {"name": "mongrel 2", "processes": [process], "totals": None},
        ],
        "mongrel2": [
            {"watcher": "mongrel 2", "connections": 7},
            {"watcher": "other", "connections": None},
        ],
    }


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(65536).decode().split("\n")


def test_a_push_sends_gauges_and_the_counters_rise_since_the_previous_push(receiver):
    pusher = StatsdPusher(f"127.0.0.1:{receiver.getsockname()[1]}", "site", interval=10)
    try:
        pusher.tick(100.0, lambda: data(40))
        first = received(receiver)
        assert first == [
            "site.hello.processes:2|g", "site.hello.cpu:2.5|g", "site.hello.rss:100|g",
            "site.hello.in_flight:3|g", "site.hello.requests:40|c", "site.hello.5xx:1|c",
            "site.hello.503:0|c", "site.hello.504:0|c",
            "site.mongrel_2.processes:1|g", "site.mongrel_2.cpu:2.5|g", "site.mongrel_2.rss:100|g",
            "site.mongrel_2.connections:7|g",
        ]  # fmt: skip
        pusher.tick(105.0, lambda: data(1000))  # not due yet: nothing sent
        pusher.tick(110.0, lambda: data(55))
        second = received(receiver)
        assert "site.hello.requests:15|c" in second
        assert "site.hello.5xx:0|c" in second
    finally:
        pusher.close()


def test_a_failing_send_is_logged_once_and_a_broken_collect_never_raises(caplog, monkeypatch):
    pusher = StatsdPusher("127.0.0.1:9", interval=0.0)
    try:

        def refuse(*args: object) -> None:
            raise OSError("no route")

        monkeypatch.setattr(pusher, "sock", type("S", (), {"sendto": staticmethod(refuse)})())
        with caplog.at_level(logging.WARNING, "m2bridge.supervisor"):
            pusher.tick(1.0, lambda: data(1))
            pusher.tick(2.0, lambda: data(2))
            pusher.tick(3.0, lambda: {"broken": True})
        assert caplog.text.count("statsd: cannot send") == 1
        assert "statsd: cannot collect" in caplog.text
    finally:
        monkeypatch.undo()
        pusher.close()


def test_lines_are_packed_into_small_datagrams(monkeypatch):
    monkeypatch.setattr(statsd, "MAX_DATAGRAM", 20)
    assert list(pack(["a" * 8, "b" * 8, "c" * 8, "d" * 30])) == [
        b"aaaaaaaa\nbbbbbbbb",
        b"cccccccc",
        b"d" * 30,
    ]
    assert list(pack([])) == []
