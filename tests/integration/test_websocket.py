"""WebSockets through the real Mongrel2 1.12.2 with a real client (``websocket-client``).

``/`` is ``handlers.chat:app`` (tnetstring handler), ``/probe`` the component tests' probe app
(JSON handler), each served by one worker. Checked against the real binary: the handshake and
the 101 sent by the handler, text and binary messages, fragments reassembled by Mongrel2,
ping answered by the handler, both close handshakes, broadcast to three clients, and a client
that vanishes without a close frame.
"""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import websocket

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.worker import run_worker

CHAT = "handlers.chat:app"
PROBE = "tests.component.worker.test_wsapp:PROBE"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("websocket")
    chat = HandlerSpec(route="/", protocol="tnetstring")
    probe = HandlerSpec(route="/probe", protocol="json")
    with (
        run_mongrel2(root / "m2", [chat, probe]) as server,
        run_worker(root / "chat", CHAT, [chat.send_spec], [chat.recv_spec], validate=False,
                   name="chat") as chat_worker,
        run_worker(root / "probe", PROBE, [probe.send_spec], [probe.recv_spec], validate=False,
                   name="probe") as probe_worker,
    ):  # fmt: skip
        yield server
    assert chat_worker.proc.returncode == 0, chat_worker.log()
    assert probe_worker.proc.returncode == 0, probe_worker.log()


@contextlib.contextmanager
def client(server, path="/"):
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}{path}", timeout=5)
    try:
        yield ws
    finally:
        ws.shutdown()


def join(server, stack):
    """Open a chat client; return it and its connection id (from its own join notice)."""
    ws = stack.enter_context(client(server))
    notice = ws.recv()
    assert notice.startswith("* "), notice
    assert " joined " in notice, notice
    return ws, int(notice.split()[1])


def recv_chat(ws, timeout=5.0):
    """The next chat message that is not a join/leave notice."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv()
        if not (isinstance(message, str) and message.startswith("* ")):
            return message
    raise AssertionError("no chat message in time")


def wait_notice(ws, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ws.recv() == text:
            return
    raise AssertionError(f"no {text!r} in time")


def test_chat_page_is_served_over_plain_http(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.0 200 OK")
    assert b"new WebSocket" in data


def test_handshake_and_text_and_binary_round_trip(server):
    with contextlib.ExitStack() as stack:
        ws, _ = join(server, stack)
        assert ws.getstatus() == 101
        ws.send("héllo")
        assert recv_chat(ws) == "héllo"
        ws.send_binary(bytes(range(256)))
        assert recv_chat(ws) == bytes(range(256))
        big = bytes(range(256)) * 256  # 64 KiB: the 8-byte length form both ways
        ws.send_binary(big)
        assert recv_chat(ws) == big


def test_fragmented_message_arrives_reassembled(server):
    with contextlib.ExitStack() as stack:
        ws, _ = join(server, stack)
        ws.send_frame(websocket.ABNF.create_frame("part1-", websocket.ABNF.OPCODE_TEXT, fin=0))
        ws.send_frame(websocket.ABNF.create_frame("part2", websocket.ABNF.OPCODE_CONT, fin=1))
        assert recv_chat(ws) == "part1-part2"


def test_ping_is_answered_with_pong(server):
    with contextlib.ExitStack() as stack:
        ws, _ = join(server, stack)
        ws.ping("are you there")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG
        assert frame.data == b"are you there"
        # Mongrel2 itself answers nothing: the next frame is the echo, not a second pong.
        ws.send("after ping")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert (opcode, frame.data) == (websocket.ABNF.OPCODE_TEXT, b"after ping")


def test_client_close_is_answered_and_the_connection_closed(server):
    with contextlib.ExitStack() as stack:
        watcher, _ = join(server, stack)
        ws, conn_id = join(server, stack)
        ws.send_close(websocket.STATUS_GOING_AWAY, b"bye")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert frame.data[:2] == (1001).to_bytes(2, "big")
        assert ws.sock.recv(1) == b""  # Mongrel2 closed the TCP connection
        wait_notice(watcher, f"* {conn_id} left (1001)")


def test_broadcast_reaches_three_clients(server):
    with contextlib.ExitStack() as stack:
        clients = [join(server, stack)[0] for _ in range(3)]
        clients[1].send("to everyone")
        clients[2].send_binary(b"\x00bin")
        received = [[recv_chat(ws), recv_chat(ws)] for ws in clients]
        # two senders: either order, but every client sees the room's one order
        assert received[0] in (["to everyone", b"\x00bin"], [b"\x00bin", "to everyone"])
        assert received[1] == received[2] == received[0]


def test_client_vanishing_without_close_frame_ends_its_socket(server):
    with contextlib.ExitStack() as stack:
        watcher, _ = join(server, stack)
        ws, conn_id = join(server, stack)
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.sock.close()
        wait_notice(watcher, f"* {conn_id} left (1006)")
        watcher.send("still here")
        assert recv_chat(watcher) == "still here"


def test_server_close_handshake_completes_through_mongrel2(server):
    with client(server, "/probe/x?y=1") as ws:
        assert ws.recv() == "hello /probe/x y=1"
        ws.send("close-me")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert frame.data == (4000).to_bytes(2, "big") + b"asked"
        ws.send_close(4000)  # the client's answer reaches the handler, which then closes
        ws.sock.settimeout(3)
        assert ws.sock.recv(1) == b""


def test_probe_app_error_closes_with_1011(server):
    with client(server, "/probe") as ws:
        ws.recv()
        ws.send("boom")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert (opcode, frame.data) == (websocket.ABNF.OPCODE_CLOSE, (1011).to_bytes(2, "big"))


def test_a_burst_of_sends_is_paced_and_every_message_arrives(server):
    # 2000 sends without yielding would be 2000 Mongrel2 messages (more than 16 queued kills
    # the connection); the paced writer merges them, and the client gets each frame in order.
    with client(server, "/probe") as ws:
        ws.recv()
        started = time.monotonic()
        ws.send("burst 2000")
        assert [ws.recv() for _ in range(2000)] == [f"b{i}" for i in range(2000)]
        assert time.monotonic() - started < 10


def test_a_burst_of_broadcasts_reaches_every_client_in_order(server):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(client(server, "/probe")) for _ in range(3)]
        for ws in clients:
            ws.recv()
        clients[0].send("fanburst 300")
        expected = [f"f{i}" for i in range(300)]
        for ws in clients:
            got: list[str] = []
            while len(got) < len(expected):  # skip "closed ..." notices of earlier tests
                message = ws.recv()
                if message.startswith("f"):
                    got.append(message)
            assert got == expected
