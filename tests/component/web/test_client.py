"""The console's control client (m2bridge/web/client.py) against a fake supervisor: a
``zmq.green`` ROUTER in a greenlet of this process that answers as told."""

from __future__ import annotations

import json
import time
from typing import Any

import gevent
import pytest
import zmq.green as zmq

from m2bridge.errors import ControlError
from m2bridge.supervisor.control import Errno
from m2bridge.web.client import GreenClient


class FakeSupervisor:
    """Answers each request with ``answer(request) -> dict | None`` (None: no answer)."""

    def __init__(self, endpoint: str, answer) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = answer
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.greenlet = gevent.spawn(self._serve)

    def _serve(self) -> None:
        while True:
            identity, empty, data = self.socket.recv_multipart()
            request = json.loads(data)
            self.requests.append(request)
            reply = self.answer(request)
            if reply is not None:
                self.socket.send_multipart([identity, empty, json.dumps(reply).encode()])

    def close(self) -> None:
        self.greenlet.kill()
        self.socket.close(linger=0)
        self.context.term()


def echo(request):
    return {"id": request["id"], "status": "ok", "data": {"command": request["command"]}}


@pytest.fixture
def endpoint(tmp_path):
    return f"ipc://{tmp_path}/ctl"


@pytest.fixture
def served(endpoint):
    """A fake supervisor whose ``answer`` a test may replace."""
    fake = FakeSupervisor(endpoint, echo)
    yield fake
    fake.close()


def test_a_call_returns_the_command_data_and_sends_the_token(endpoint, served):
    client = GreenClient(endpoint, timeout=2, token="tok")
    try:
        assert client.call("stats") == {"command": "stats"}
        assert client.call("incr", {"name": "hello"}) == {"command": "incr"}
    finally:
        client.close()
    assert served.requests == [
        {"id": 1, "command": "stats", "args": {}, "token": "tok"},
        {"id": 2, "command": "incr", "args": {"name": "hello"}, "token": "tok"},
    ]


def test_a_command_error_keeps_its_errno(endpoint, served):
    served.answer = lambda r: {
        "id": r["id"],
        "status": "error",
        "error": "no watcher named 'x'",
        "errno": 5,
    }
    client = GreenClient(endpoint, timeout=2)
    try:
        with pytest.raises(ControlError, match="no watcher named 'x'") as caught:
            client.call("incr", {"name": "x"})
    finally:
        client.close()
    assert caught.value.errno == Errno.NO_SUCH_WATCHER


def test_an_answer_to_another_request_is_refused(endpoint, served):
    served.answer = lambda r: {"id": r["id"] + 100, "status": "ok", "data": {}}
    client = GreenClient(endpoint, timeout=2)
    try:
        with pytest.raises(ControlError, match="does not match") as caught:
            client.call("stats")
    finally:
        client.close()
    assert caught.value.errno == Errno.BAD_MESSAGE


def test_no_answer_times_out_and_the_next_call_works(endpoint, served):
    silent = {"first": True}

    def answer(request):
        if silent.pop("first", False):
            return None
        return echo(request)

    served.answer = answer
    client = GreenClient(endpoint, timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ControlError, match=r"no answer from .* within 0\.3 s") as caught:
            client.call("stats")
        assert 0.25 < time.monotonic() - started < 2
        assert caught.value.errno == Errno.UNREACHABLE
        assert client.call("status") == {"command": "status"}  # a fresh REQ socket
    finally:
        client.close()


def test_calls_from_two_greenlets_take_turns(endpoint, served):
    def slow(request):
        gevent.sleep(0.05)
        return echo(request)

    served.answer = slow
    client = GreenClient(endpoint, timeout=2)
    try:
        calls = [gevent.spawn(client.call, name) for name in ("stats", "status", "dstats")]
        gevent.joinall(calls, timeout=5, raise_error=True)
        assert [call.value for call in calls] == [
            {"command": "stats"},
            {"command": "status"},
            {"command": "dstats"},
        ]
    finally:
        client.close()


def test_a_missing_ipc_socket_fails_at_once(tmp_path):
    client = GreenClient(f"ipc://{tmp_path}/none.ctl", timeout=5)
    try:
        started = time.monotonic()
        with pytest.raises(ControlError, match="no supervisor at ipc://") as caught:
            client.call("stats")
        assert time.monotonic() - started < 1
        assert caught.value.errno == Errno.UNREACHABLE
    finally:
        client.close()


def test_a_bad_endpoint_is_unreachable():
    client = GreenClient("nonsense://x", timeout=1)
    try:
        with pytest.raises(ControlError, match="cannot connect to nonsense://x") as caught:
            client.call("stats")
        assert caught.value.errno == Errno.UNREACHABLE
    finally:
        client.close()
