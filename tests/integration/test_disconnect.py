"""Clients, workers and Mongrel2 going away mid-flight, with the real Mongrel2.

Requests whose client left are cancelled after ``--cancel-grace``; notices are never answered
(an answer would start an endless notice ping-pong); a stopping worker finishes what it has; a
restarted Mongrel2 is served again without restarting the worker.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import time

import pytest

from tests.helpers.mongrel2 import HandlerSpec, free_port, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

MUX = f"{APPS}.mux:app"
#: --cancel-grace of the module's worker: how long a request outlives its client.
GRACE = 0.2


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("disconnect")
    handler = HandlerSpec(route="/", protocol="json")
    with (
        run_mongrel2(root / "m2", [handler]) as server,
        run_worker(root / "w", MUX, [handler.send_spec], [handler.recv_spec],
                   ["--cancel-grace", str(GRACE)]) as worker,
    ):  # fmt: skip
        yield server, worker
    assert worker.proc.returncode == 0, worker.log()


def send_and_leave(server, request, read_first=0):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while len(received) < read_first:
            received += sock.recv(65536)
        return received


def error_log_settles(server, seconds=1.0):
    """True when Mongrel2's error log stops growing (no notice ping-pong going on): there is no
    signal for "nothing happens", so the log is watched for ``seconds``."""
    before = len(server.error_log())
    time.sleep(seconds)
    return len(server.error_log()) == before


def idle(worker) -> bool:
    return bool(worker.stats().get("in_flight") == 0)


def test_client_leaving_mid_request_cancels_it_after_the_grace_period_within_2s(stack):
    server, worker = stack
    assert wait_until(lambda: idle(worker), 5), worker.stats()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /sleepy/?seconds=20 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: worker.stats().get("in_flight") == 1, 3)
        left = time.monotonic()  # the close below is what Mongrel2 reports to the worker
    assert wait_until(lambda: idle(worker), 3), worker.stats()
    took = time.monotonic() - left
    assert GRACE <= took < 2, took
    assert error_log_settles(server)


def test_client_leaving_mid_stream_stops_the_stream(stack):
    server, worker = stack
    head = send_and_leave(
        server, b"GET /stream/?chunks=100000&delay=0.01 HTTP/1.1\r\nHost: x\r\n\r\n", 20
    )
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert wait_until(lambda: worker.stats().get("in_flight") == 0, 3), worker.stats()
    assert error_log_settles(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/hello/")
    assert conn.getresponse().status == 200
    conn.close()


def test_50_clients_leaving_at_once_have_their_50_requests_cancelled_and_the_worker_serves_on(
    stack,
):
    server, worker = stack
    assert wait_until(lambda: idle(worker), 5), worker.stats()
    served = worker.stats()["served"]
    with contextlib.ExitStack() as clients:
        for _ in range(50):
            sock = clients.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
            sock.sendall(b"GET /sleepy/?seconds=20 HTTP/1.1\r\nHost: x\r\n\r\n")
        # all 50 requests run in the worker before any client leaves
        assert wait_until(lambda: worker.stats()["in_flight"] == 50, 5), worker.stats()
    # every request ended long before its 20 s: each was cancelled
    assert wait_until(lambda: idle(worker), 3), worker.stats()
    # (the stats file lags up to 0.5 s: the count before may miss the last request before)
    assert worker.stats()["served"] - served >= 50
    assert error_log_settles(server)
    assert fetch(server) == 200
    assert worker.proc.poll() is None


def test_stopping_worker_finishes_its_requests_and_a_new_worker_takes_over(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    with run_mongrel2(tmp_path / "m2", [handler]) as server:
        specs = ([handler.send_spec], [handler.recv_spec])
        with run_worker(tmp_path / "w1", MUX, *specs, ["--graceful-timeout", "5"]) as worker:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/sleepy/?seconds=1")
            assert wait_until(lambda: worker.stats().get("in_flight") == 1, 3), worker.stats()
            worker.proc.send_signal(signal.SIGTERM)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"slept 1.0\n")
            assert worker.wait_exit(5) == 0
        conn.request("GET", "/hello/")  # queued in Mongrel2 until the next worker connects
        with run_worker(tmp_path / "w2", MUX, *specs):
            assert conn.getresponse().status == 200
        conn.close()


def test_worker_survives_a_mongrel2_restart_and_serves_it_again(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    port = free_port()
    chroot = tmp_path / "m2"
    with (
        run_mongrel2(chroot, [handler], port=port) as server,
        run_worker(tmp_path / "w", MUX, [handler.send_spec], [handler.recv_spec]) as worker,
    ):
        assert fetch(server) == 200
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)
        assert wait_until(lambda: "went away" in worker.log(), 5), worker.log()
        with run_mongrel2(chroot, [handler], port=port) as restarted:
            assert fetch(restarted) == 200
        assert worker.log().count("Mongrel2 connected") == 2


def fetch(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/hello/")
        return conn.getresponse().status
    finally:
        conn.close()
