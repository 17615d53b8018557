"""What a stranger who reaches Mongrel2's recv_spec can do, checked against the real Mongrel2
(docs/deployment.md, "Security of each endpoint"): why that endpoint must be on a private
network whatever m2bridge does.

The stranger is a plain ZeroMQ publisher that knows only the address; the client's request
was read by the handler (a plain PULL standing for a slow application), which has not
answered yet.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import zmq

from m2bridge.wire.encode import encode_reply
from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2

#: Connection ids the stranger tries: a fresh Mongrel2 numbers its connections from the start.
GUESSED_IDS = range(64)
FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nforged"


@pytest.fixture
def waiting_client(request, tmp_path) -> Iterator[tuple[HandlerSpec, socket.socket]]:
    """Mongrel2 with one handler route (``request.param``: its recv_ident) and a client whose
    request the handler has read and not answered yet (a plain PULL: a slow application)."""
    handler = HandlerSpec(route="/", recv_ident=request.param)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    try:
        with run_mongrel2(tmp_path / "m2", [handler]) as server:
            pull.connect(handler.send_spec)
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
                client.sendall(b"GET /account HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert pull.poll(5000), "the handler got no request"
                assert b" /account " in pull.recv()
                yield handler, client
    finally:
        pull.close()
        context.term()


def stranger(recv_spec: str) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes], bytes]:
    """An XPUB connected to ``recv_spec`` and the subscription Mongrel2's SUB sent it."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = context.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 1000)
    pub.connect(recv_spec)
    assert pub.poll(5000), "Mongrel2's SUB sent no subscription"
    return context, pub, pub.recv()


def read_response(client: socket.socket) -> bytes:
    """What the client got, up to the forged body (Mongrel2 keeps the connection open)."""
    data = b""
    while not data.endswith(b"forged") and (part := client.recv(65536)):
        data += part
    return data


@pytest.mark.parametrize("waiting_client", [""], indirect=True, ids=["recv_ident empty"])
def test_any_publisher_on_recv_spec_answers_a_waiting_client_with_any_uuid(waiting_client):
    handler, client = waiting_client
    context, pub, _ = stranger(handler.recv_spec)
    try:
        pub.send(encode_reply(b"not-this-servers-uuid", GUESSED_IDS, FORGED))
        assert read_response(client).endswith(b"\r\n\r\nforged")
    finally:
        pub.close()
        context.term()


@pytest.mark.parametrize("waiting_client", ["a-recv-ident"], indirect=True, ids=["recv_ident set"])
def test_mongrel2_tells_every_publisher_its_recv_ident_which_then_answers_any_client(
    waiting_client,
):
    handler, client = waiting_client
    context, pub, subscription = stranger(handler.recv_spec)
    try:
        assert subscription == b"\x01a-recv-ident"
        pub.send(encode_reply(subscription[1:], GUESSED_IDS, FORGED))
        assert read_response(client).endswith(b"\r\n\r\nforged")
    finally:
        pub.close()
        context.term()
