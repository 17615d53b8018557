"""The supervisor's HTTP endpoint on real loopback sockets, driven the way its loop drives it:
poll its fds, hand each ready one to ``handle``."""

from __future__ import annotations

import logging
import select
import socket
import time

import pytest

from m2bridge.errors import ConfigError
from m2bridge.supervisor import http_endpoint
from m2bridge.supervisor.http_endpoint import HttpEndpoint, Reply


def hello() -> Reply:
    return Reply(200, "text/plain", b"hello\n")


def broken() -> Reply:
    raise RuntimeError("bug")


@pytest.fixture
def endpoint():
    server = HttpEndpoint("127.0.0.1:0", {"/hello": hello, "/broken": broken})
    yield server
    server.close()


def pump(server: HttpEndpoint, seconds: float = 0.2) -> None:
    """Run the loop's part for a while: poll, then handle what is ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, writable, _ = select.select(server.fds(), server.writable(), [], 0.01)
        for fd in {*readable, *writable}:
            server.handle(fd, time.monotonic())


def exchange(server: HttpEndpoint, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as client:
        client.sendall(request)
        pump(server)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_get_is_answered_and_the_connection_closed(endpoint):
    reply = exchange(endpoint, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 6" in head
    assert b"connection: close" in head
    assert body == b"hello\n"
    assert endpoint.served == 1
    assert endpoint.fds() == [endpoint.listener.fileno()]


def test_head_gets_the_head_only(endpoint):
    reply = exchange(endpoint, b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
        (b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", b"405"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /hello HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
    ],
)
def test_bad_requests_get_a_4xx(endpoint, request_bytes, status):
    assert exchange(endpoint, request_bytes).startswith(b"HTTP/1.1 " + status)


def test_a_route_that_raises_answers_500_and_logs(endpoint, caplog):
    with caplog.at_level(logging.ERROR, "m2bridge.supervisor"):
        assert exchange(endpoint, b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 500 "
        )
    assert "metrics: /broken failed" in caplog.text


def test_a_head_larger_than_the_limit_is_refused(endpoint):
    huge = b"GET /hello HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (http_endpoint.MAX_HEAD + 10)
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=2) as client:
        client.sendall(huge)
        pump(endpoint)
        assert client.recv(100).startswith(b"HTTP/1.1 431 ")


def test_a_token_is_required_when_set():
    server = HttpEndpoint("127.0.0.1:0", {"/hello": hello}, token="s3cret")
    try:
        assert exchange(server, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 401 "
        )
        wrong = b"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n"
        assert exchange(server, wrong).startswith(b"HTTP/1.1 401 ")
        right = b"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n"
        assert exchange(server, right).endswith(b"hello\n")
    finally:
        server.close()


def test_an_idle_connection_is_closed_after_the_timeout(endpoint):
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=2) as client:
        client.sendall(b"GET /hel")
        pump(endpoint)
        assert len(endpoint.fds()) == 2
        endpoint.expire(time.monotonic() + http_endpoint.IDLE_TIMEOUT + 1)
        assert endpoint.fds() == [endpoint.listener.fileno()]
        assert client.recv(100) == b""


def test_connections_past_the_limit_are_closed_at_once(endpoint, monkeypatch):
    monkeypatch.setattr(http_endpoint, "MAX_CONNECTIONS", 2)
    clients = [socket.create_connection(("127.0.0.1", endpoint.port), timeout=2) for _ in range(3)]
    try:
        pump(endpoint)
        assert len(endpoint.fds()) == 3  # the listener and two
        assert clients[2].recv(10) == b""  # the third, accepted last, was closed
        for client in clients[:2]:
            client.setblocking(False)
            with pytest.raises(BlockingIOError):
                client.recv(10)
    finally:
        for client in clients:
            client.close()


def test_a_client_that_does_not_read_never_blocks_the_loop():
    body = b"x" * (8 << 20)
    server = HttpEndpoint("127.0.0.1:0", {"/big": lambda: Reply(200, "text/plain", body)})
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            pump(server, 0.3)
            assert time.monotonic() - started < 1.0
            assert server.writable()  # the rest waits for room, the loop goes on
            received = 0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pump(server, 0.001)
                chunk = client.recv(1 << 22)
                if not chunk:
                    break
                received += len(chunk)
            assert received > len(body)
    finally:
        server.close()


def test_a_peer_that_leaves_early_is_forgotten(endpoint):
    client = socket.create_connection(("127.0.0.1", endpoint.port), timeout=2)
    pump(endpoint)
    client.close()
    pump(endpoint)
    assert endpoint.fds() == [endpoint.listener.fileno()]


def test_an_address_in_use_is_a_config_error(endpoint):
    with pytest.raises(ConfigError, match="address in use"):
        HttpEndpoint(f"127.0.0.1:{endpoint.port}", {})


def test_an_unresolvable_address_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cannot listen on no-such-host\.invalid:80"):
        HttpEndpoint("no-such-host.invalid:80", {})


def test_a_non_loopback_address_without_token_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, "m2bridge.supervisor"):
        HttpEndpoint("0.0.0.0:0", {}).close()
    assert "reachable from other hosts and needs no token" in caplog.text
