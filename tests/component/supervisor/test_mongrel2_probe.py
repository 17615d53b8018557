"""Mongrel2Probe against a fake control port: a real zmq REP in this process answering as
Mongrel2 1.12.2 does, driven by a manual clock (the probe only knows the ``now`` it is given)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import tnetstring
import zmq

from m2bridge.supervisor.mongrel2_probe import Mongrel2Probe

NET_HEADERS = [
    b"id",
    b"fd",
    b"type",
    b"last_ping",
    b"last_read",
    b"last_write",
    b"bytes_read",
    b"bytes_written",
]
TASK_HEADERS = [b"id", b"system", b"name", b"state", b"status"]
TASK_ROWS = [
    [1, False, b"SERVER", b"read fd", b"idle"],
    [2, False, b"Handler_task", b"read handler", b"idle"],
    [3, False, b"control", b"read handler", b"running"],
    [4, True, b"fdtask", b"yield", b"ready"],
]
NOT_FOUND = {b"code": b"CALLBACK_NOT_FOUND", b"error": b"Callback requested was not found."}
#: How long the test waits for real zmq traffic (the probe's clock is manual).
WAIT_MS = 2000


class FakeControlPort:
    """A REP socket answering ``status`` as Mongrel2 does (``connections`` net rows); when
    ``silent`` it reads nothing, like a stopped or wedged server."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.connections = 3
        self.silent = False
        self.broken = False  # answer every request with Mongrel2's CALLBACK_NOT_FOUND
        self.requests: list[object] = []

    def answer(self, wait_ms: int = WAIT_MS) -> bool:
        """Answer one request if one comes within ``wait_ms``."""
        if self.silent or not self.socket.poll(wait_ms, zmq.POLLIN):
            return False
        request = tnetstring.loads(self.socket.recv())
        self.requests.append(request)
        self.socket.send(tnetstring.dumps(self.reply(request)))
        return True

    def reply(self, request: object) -> object:
        if self.broken or not isinstance(request, list) or request[0] != b"status":
            return NOT_FOUND
        what = request[1].get(b"what")
        if what == b"net":
            rows = [[-1, 20 + i, 0, 0, 0, 0, 0, 0] for i in range(self.connections)]
            return {b"headers": NET_HEADERS, b"rows": rows}
        if what == b"tasks":
            return {b"headers": TASK_HEADERS, b"rows": TASK_ROWS}
        return {b"error": b"Expected argument what=['net'|'tasks']."}

    def nothing_asked(self, wait_ms: int = 100) -> bool:
        return not self.socket.poll(wait_ms, zmq.POLLIN)


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def endpoint(base: Path) -> str:
    return f"ipc://{base}/control"


@pytest.fixture
def port(context, endpoint) -> FakeControlPort:
    return FakeControlPort(context, endpoint)


@pytest.fixture
def probe(context, endpoint) -> Iterator[Mongrel2Probe]:
    probe = Mongrel2Probe(endpoint, interval=1.0, timeout=2.0, context=context)
    yield probe
    probe.close()


def deliver(probe: Mongrel2Probe, port: FakeControlPort, now: float) -> None:
    """The port answers the request in flight; the probe reads the reply at ``now``."""
    assert port.answer()
    assert probe.socket.poll(WAIT_MS, zmq.POLLIN)
    probe.on_readable(now)


def full_round(probe: Mongrel2Probe, port: FakeControlPort, now: float) -> None:
    probe.tick(now)
    deliver(probe, port, now)  # status what=net; the probe then asks for the tasks at once
    deliver(probe, port, now)


def test_a_full_round_reports_connections_and_tasks(probe, port):
    assert probe.snapshot(0.0) == {
        "endpoint": probe.endpoint,
        "answering": False,
        "connections": None,
        "tasks": None,
        "error": "no answer yet",
        "failing": False,
    }
    full_round(probe, port, 0.0)
    assert port.requests == [
        [b"status", {b"what": b"net"}],
        [b"status", {b"what": b"tasks"}],
    ]
    assert probe.snapshot(0.1) == {
        "endpoint": probe.endpoint,
        "answering": True,
        "connections": 3,
        "tasks": 4,
        "error": "",
        "failing": False,
    }


def test_one_round_per_interval(probe, port):
    full_round(probe, port, 0.0)
    probe.tick(0.5)
    assert port.nothing_asked()
    port.connections = 7
    full_round(probe, port, 1.0)
    assert probe.snapshot(1.0)["connections"] == 7
    assert len(port.requests) == 4


def test_answering_lapses_when_no_round_completes_in_the_window(probe, port):
    full_round(probe, port, 0.0)
    assert probe.snapshot(5.0)["answering"] is True  # 3 * interval + timeout
    assert probe.snapshot(5.01) == {
        "endpoint": probe.endpoint,
        "answering": False,
        "connections": None,
        "tasks": None,
        "error": "no answer in 5 s",
        "failing": False,  # nothing failed: it was not asked (its watcher not ticking it)
    }


def test_a_port_that_never_answers_is_not_answering_after_timeout(probe, port, caplog):
    caplog.set_level(logging.INFO, "m2bridge.supervisor")
    port.silent = True
    probe.tick(0.0)
    first_socket = probe.socket
    probe.on_readable(0.5)  # nothing there: a no-op, never a block
    probe.tick(1.9)
    assert probe.snapshot(1.9)["error"] == "no answer yet"
    probe.tick(2.0)
    assert probe.snapshot(2.0) == {
        "endpoint": probe.endpoint,
        "answering": False,
        "connections": None,
        "tasks": None,
        "error": "no answer in 2 s",
        "failing": True,
    }
    assert probe.socket is not first_socket  # REQ is lockstep: a new socket asks again
    for now in (3.0, 4.0, 5.0, 6.0, 7.0):
        probe.tick(now)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"mongrel2 control {probe.endpoint}: no answer in 2 s"
    ]  # once per change of error, not every round

    port.silent = False  # the server is back: the stale requests go to closed sockets
    while port.answer(wait_ms=200):
        pass
    full_round(probe, port, 8.0)
    assert probe.snapshot(8.0) == {
        "endpoint": probe.endpoint,
        "answering": True,
        "connections": 3,
        "tasks": 4,
        "error": "",
        "failing": False,
    }
    assert caplog.records[-1].getMessage() == f"mongrel2 control {probe.endpoint}: answering again"


def test_a_once_answering_port_stops_answering_within_timeout(probe, port):
    full_round(probe, port, 0.0)
    port.silent = True
    probe.tick(1.0)
    probe.tick(2.9)
    assert probe.snapshot(2.9)["answering"] is True
    probe.tick(3.0)
    assert probe.snapshot(3.0)["answering"] is False
    assert probe.snapshot(3.0)["error"] == "no answer in 2 s"


def test_an_unanswered_tasks_request_times_out_too(probe, port):
    probe.tick(0.0)
    deliver(probe, port, 0.5)
    port.silent = True
    probe.tick(2.4)
    assert probe.snapshot(2.4)["error"] == "no answer yet"
    probe.tick(2.5)  # 2 s after the tasks request
    assert probe.snapshot(2.5)["error"] == "no answer in 2 s"


def test_an_error_reply_ends_the_round_with_mongrels_words(probe, port):
    port.broken = True
    probe.tick(0.0)
    deliver(probe, port, 0.0)
    assert port.nothing_asked()  # no what=tasks after a failed what=net
    snapshot = probe.snapshot(0.0)
    assert snapshot["answering"] is False
    assert snapshot["error"] == (
        "status what=net: mongrel2 refused the request: "
        "CALLBACK_NOT_FOUND: Callback requested was not found."
    )
    port.broken = False
    probe.tick(0.5)
    assert port.nothing_asked()  # the next round starts on time, not at once
    full_round(probe, port, 1.0)
    assert probe.snapshot(1.0)["answering"] is True


def test_a_send_that_cannot_be_queued_counts_as_no_answer(context, base):
    probe = Mongrel2Probe(f"ipc://{base}/nobody", context=context)
    try:  # IMMEDIATE: no connected peer, no pipe: the NOBLOCK send raises Again
        probe.socket.close(linger=0)
        probe.socket = context.socket(zmq.REQ)
        probe.socket.setsockopt(zmq.IMMEDIATE, 1)
        probe.socket.connect(probe.endpoint)
        probe.tick(0.0)
        probe.on_readable(0.1)  # the REQ is still in its send state: a no-op
        probe.tick(2.0)
        assert probe.snapshot(2.0)["error"] == "no answer in 2 s"
    finally:
        probe.close()


def test_an_endpoint_that_cannot_be_connected_is_an_error_not_an_exception(context):
    probe = Mongrel2Probe("ipc://" + "x" * 200, context=context)
    try:
        probe.tick(0.0)
        snapshot = probe.snapshot(0.0)
        assert snapshot["answering"] is False
        assert snapshot["error"].startswith("cannot connect to ipc://xxx")
    finally:
        probe.close()


class Exploding:
    """Stands in for the probe's socket: every call raises ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.closed = False

    def recv(self, flags: int = 0) -> bytes:
        raise self.exc

    def send(self, data: bytes, flags: int = 0) -> None:
        raise self.exc

    def close(self, linger: int | None = None) -> None:
        self.closed = True


def explode(probe: Mongrel2Probe, exc: Exception) -> None:
    """Replace the probe's socket (closed first) by one whose every call raises ``exc``."""
    probe.socket.close(linger=0)
    probe.socket = Exploding(exc)  # type: ignore[assignment]


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("boom"), zmq.ZMQError(zmq.ENOTSUP)],
    ids=["bug", "zmq-error"],
)
def test_on_readable_never_raises_and_starts_afresh(probe, port, exc):
    probe.tick(0.0)
    explode(probe, exc)
    probe.on_readable(0.1)
    assert probe.snapshot(0.1)["error"] == f"probe error: {exc!r}"
    assert isinstance(probe.socket, zmq.Socket)
    while port.answer(wait_ms=200):  # the request of the replaced socket
        pass
    full_round(probe, port, 1.0)
    assert probe.snapshot(1.0)["answering"] is True


def test_tick_never_raises(probe):
    explode(probe, RuntimeError("boom"))
    probe.tick(0.0)
    assert probe.snapshot(0.0)["error"] == "probe error: RuntimeError('boom')"


class NoSockets:
    def socket(self, kind: int) -> zmq.Socket[bytes]:
        raise zmq.ZMQError(zmq.ETERM)


def test_a_probe_that_cannot_make_a_socket_stops_quietly(probe, caplog):
    caplog.set_level(logging.WARNING, "m2bridge.supervisor")
    explode(probe, RuntimeError("boom"))
    probe.context = NoSockets()
    probe.tick(0.0)
    error = probe.snapshot(0.0)["error"]
    assert error.startswith("probe stopped: cannot recreate its socket: ZMQError(")
    probe.tick(5.0)  # stopped: nothing happens, nothing is logged again
    probe.on_readable(5.0)
    assert len(caplog.records) == 2  # the bug, then the stop


def test_a_stray_wake_up_is_a_no_op(probe, port):
    probe.on_readable(0.0)
    assert probe.snapshot(0.0)["error"] == "no answer yet"
    assert port.nothing_asked()


def test_close_is_idempotent_and_terminates_an_owned_context(endpoint):
    probe = Mongrel2Probe(endpoint)
    probe.close()
    probe.close()
    assert probe.socket.closed
    assert probe.context.closed
    probe.tick(0.0)  # closed: nothing happens
    probe.on_readable(0.0)


def test_a_shared_context_is_left_open(context, endpoint):
    probe = Mongrel2Probe(endpoint, context=context)
    probe.close()
    assert not context.closed
