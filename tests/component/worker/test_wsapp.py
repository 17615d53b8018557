"""WebSocket apps in a real worker process against FakeMongrel2 (no Mongrel2 binary).

The worker serves ``handlers.chat:app`` or ``PROBE`` (below); the fake sends handshake and
frame messages exactly as Mongrel2 1.12.2 does (MONGREL2.md 2.5) and reads back the 101
response, the frames and the close message of each connection id.
"""

from __future__ import annotations

import gevent
import pytest
from gevent.pool import Pool

from m2bridge.testing import FakeMongrel2, make_disconnect_frame, make_request_frame, parse_reply
from m2bridge.wire.encode import MAX_TARGETS
from m2bridge.wire.protocol import WebSocketHandshake, parse_message
from m2bridge.wire.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_PONG,
    OP_TEXT,
    decode_frames,
    encode_close_payload,
)
from m2bridge.worker.connection import ConnectionTable
from m2bridge.worker.wsapp import (
    WebSocket,
    WebSocketHandler,
    WebSocketHub,
    broadcast,
    with_websocket,
)
from m2bridge.wsgi.environ import EnvironSettings
from tests.helpers.sink import NotRelayed
from tests.helpers.waiting import wait_until
from tests.helpers.worker import run_worker

ACCEPT = "BACScCJPNqyz+UBoqMH89VmURoA="
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\n"


class Probe(WebSocketHandler):
    """Test app: commands in text messages drive the server side of the API."""

    def __init__(self) -> None:
        self.sockets: dict[int, WebSocket] = {}

    def on_connect(self, ws: WebSocket) -> None:
        self.sockets[ws.conn_id] = ws
        ws.send(f"hello {ws.environ['PATH_INFO']} {ws.environ['QUERY_STRING']}")

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        if message == "close-me":
            ws.close(4000, "asked")
        elif message == "ping-me":
            ws.ping(b"probe")
        elif message == "boom":
            raise RuntimeError("boom")
        elif isinstance(message, str) and message.startswith("burst "):
            for i in range(int(message.split()[1])):  # no yield: pacing must merge them
                ws.send(f"b{i}")
        elif isinstance(message, str) and message.startswith("fanburst "):
            targets = [s for s in self.sockets.values() if s.open]
            for i in range(int(message.split()[1])):
                broadcast(targets, f"f{i}")
        elif message == "fanout":
            targets = [s for s in self.sockets.values() if s.open]
            count = broadcast(targets * 2, "fan")  # duplicates are sent once per listing
            ws.send(f"fanout {count}")
        else:
            ws.send(message)

    def on_pong(self, ws: WebSocket, payload: bytes) -> None:
        ws.send(b"pong:" + payload)

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        self.sockets.pop(ws.conn_id, None)
        for other in self.sockets.values():
            other.send(f"closed {ws.conn_id} {code} {reason}")


def _plain(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


PROBE = with_websocket(_plain, Probe())


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeMongrel2(tmp_path_factory.mktemp("m2")) as fake:
        yield fake


@pytest.fixture(scope="module")
def worker(fake, tmp_path_factory):
    app = "tests.component.worker.test_wsapp:PROBE"
    with run_worker(
        tmp_path_factory.mktemp("w"), app, [fake.send_spec], [fake.recv_spec], validate=False
    ) as worker:
        yield worker
    assert worker.proc.returncode == 0, worker.log()


def handshake(fake, path="/ws", query=None, conn_id=None):
    conn_id = fake.next_conn_id() if conn_id is None else conn_id
    headers = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13"}
    frame = make_request_frame(
        path, conn_id=conn_id, method="WEBSOCKET_HANDSHAKE", query=query, headers=headers,
        body=ACCEPT.encode(), sender=fake.sender,
    )  # fmt: skip
    fake.send_frame(frame)
    return conn_id


def send(fake, conn_id, payload, flags=0x81):
    headers = {"upgrade": "websocket", "FLAGS": f"0x{flags:02x}"}
    fake.send_frame(
        make_request_frame(
            "/ws", conn_id=conn_id, method="WEBSOCKET", headers=headers, body=payload,
            sender=fake.sender,
        )
    )  # fmt: skip


def frames(fake, conn_id, count, timeout=5.0):
    """Wait for ``count`` server frames after the 101 response on ``conn_id``."""
    found: list[tuple[int, bool, bytes]] = []

    def enough():
        data = fake.pending_bytes(conn_id)
        if data.startswith(SWITCHING):
            data = data[data.index(b"\r\n\r\n") + 4 :]
        found[:] = decode_frames(data)[0]
        return len(found) >= count

    assert fake.wait_for(enough, timeout), (fake.pending_bytes(conn_id), fake.is_closed(conn_id))
    return [(opcode, payload) for opcode, _, payload in found]


def test_handshake_is_answered_101_then_on_connect_sees_the_environ(fake, worker):
    conn_id = handshake(fake, "/ws/room", query="a=1")
    assert frames(fake, conn_id, 1) == [(OP_TEXT, b"hello /ws/room a=1")]
    assert fake.pending_bytes(conn_id).startswith(
        SWITCHING + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n\r\n"
    )
    assert not fake.is_closed(conn_id)


def test_text_and_binary_messages_reach_the_handler_and_come_back(fake, worker):
    conn_id = handshake(fake)
    send(fake, conn_id, "héllo".encode())
    send(fake, conn_id, b"\x00\xff", flags=0x82)
    assert frames(fake, conn_id, 3)[1:] == [(OP_TEXT, "héllo".encode()), (OP_BINARY, b"\x00\xff")]


def test_ping_is_answered_with_pong_and_a_pong_reaches_on_pong(fake, worker):
    conn_id = handshake(fake)
    send(fake, conn_id, b"abc", flags=0x89)
    send(fake, conn_id, b"ping-me")
    got = frames(fake, conn_id, 3)
    assert got[1] == (OP_PONG, b"abc")
    assert got[2] == (0x9, b"probe")
    send(fake, conn_id, b"probe", flags=0x8A)
    assert frames(fake, conn_id, 4)[3] == (OP_BINARY, b"pong:probe")


def test_client_close_is_answered_with_its_code_then_the_connection_closes(fake, worker):
    watcher, conn_id = handshake(fake), handshake(fake)
    frames(fake, conn_id, 1)
    send(fake, conn_id, encode_close_payload(1001, "bye"), flags=0x88)
    assert fake.wait_closed(conn_id)
    assert frames(fake, conn_id, 2)[1] == (OP_CLOSE, b"\x03\xe9")
    assert (OP_TEXT, f"closed {conn_id} 1001 bye".encode()) in frames(fake, watcher, 2)


def test_server_close_waits_for_the_client_close_frame(fake, worker):
    conn_id = handshake(fake)
    send(fake, conn_id, b"close-me")
    assert frames(fake, conn_id, 2)[1] == (OP_CLOSE, encode_close_payload(4000, "asked"))
    probe = handshake(fake)  # a later round trip: a close sent with our close frame came first
    frames(fake, probe, 1)
    assert not fake.is_closed(conn_id)  # the close handshake is not over yet
    send(fake, conn_id, b"after close")  # data after our close frame is dropped
    send(fake, conn_id, encode_close_payload(4000), flags=0x88)
    assert fake.wait_closed(conn_id)
    assert len(frames(fake, conn_id, 2)) == 2


@pytest.mark.parametrize(
    ("payload", "flags", "code"),
    [(b"\xc3(", 0x81, 1007), (b"x", 0x83, 1002), (b"\x03", 0x88, 1002), (b"boom", 0x81, 1011)],
)
def test_bad_input_and_app_errors_close_with_a_code(fake, worker, payload, flags, code):
    conn_id = handshake(fake)
    send(fake, conn_id, payload, flags=flags)
    assert fake.wait_closed(conn_id)
    assert frames(fake, conn_id, 2)[1] == (OP_CLOSE, code.to_bytes(2, "big"))
    assert worker.proc.poll() is None


def test_disconnect_runs_on_close_with_1006_and_sends_nothing_to_the_dead_id(fake, worker):
    watcher, conn_id = handshake(fake), handshake(fake)
    frames(fake, conn_id, 1)
    count = fake.message_count(conn_id)
    fake.send_frame(make_disconnect_frame(conn_id, sender=fake.sender))
    assert (OP_TEXT, f"closed {conn_id} 1006 ".encode()) in frames(fake, watcher, 2)
    assert fake.message_count(conn_id) == count


def test_frame_for_an_unknown_connection_is_adopted(fake, worker):
    conn_id = fake.next_conn_id()
    send(fake, conn_id, b"late")
    assert frames(fake, conn_id, 2) == [(OP_TEXT, b"hello /ws "), (OP_TEXT, b"late")]


def test_broadcast_splits_into_messages_of_at_most_128_ids(fake, worker):
    ids = [handshake(fake) for _ in range(MAX_TARGETS + 2)]
    for conn_id in ids:
        frames(fake, conn_id, 1)
    send(fake, ids[0], b"fanout")
    got = frames(fake, ids[0], 3)
    assert got[1] == (OP_TEXT, b"fan")
    count = int(got[2][1].split()[1])  # every open socket of the probe, listed twice
    batches = [r.conn_ids for r in fake.replies if r.body == b"\x81\x03fan"]
    targets = [conn_id for batch in batches for conn_id in batch]
    assert len(targets) == len(set(targets)) == count >= len(ids)
    assert len(batches) == -(-count // MAX_TARGETS)
    assert max(len(batch) for batch in batches) == MAX_TARGETS
    assert all(frames(fake, conn_id, 2)[1] == (OP_TEXT, b"fan") for conn_id in ids)


def test_handshake_to_a_plain_wsgi_app_is_refused_501(tmp_path):
    with (
        FakeMongrel2(tmp_path) as fake,
        run_worker(tmp_path / "w", "handlers.hello:app", [fake.send_spec], [fake.recv_spec]),
    ):
        conn_id = handshake(fake)
        response = fake.response(conn_id, until_close=True)
        assert response.status == 501
        send(fake, conn_id, b"ignored")
        # A later round trip: a reply to the frame would have come before this one.
        assert fake.response(fake.request("/")).status == 200
        assert fake.message_count(conn_id) == 2  # the 501 and its close; the frame is dropped


def test_chat_page_and_room(tmp_path):
    with (
        FakeMongrel2(tmp_path) as fake,
        run_worker(
            tmp_path / "w", "handlers.chat:app", [fake.send_spec], [fake.recv_spec],
            validate=False,
        ),
    ):  # fmt: skip
        page = fake.response(fake.request("/"))
        assert page.status == 200
        assert b"new WebSocket" in page.body
        first, second = handshake(fake), handshake(fake)
        send(fake, second, b"hi all")
        expected = (OP_TEXT, b"hi all")
        assert expected in frames(fake, first, 3)
        assert expected in frames(fake, second, 2)


class ListSink(NotRelayed):
    """An in-process channel: replies appended to a list."""

    index = 0
    recv_spec = "inproc://test"
    reply_ident = None

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.sent.append(message)


def test_close_all_sends_going_away_then_closes_each_socket():
    sink = ListSink()
    hub = WebSocketHub(Probe(), ConnectionTable(Pool(4)), EnvironSettings())
    for conn_id in (7, 8):
        frame = make_request_frame(
            "/ws", conn_id=conn_id, method="WEBSOCKET_HANDSHAKE", body=ACCEPT.encode()
        )
        event = parse_message(frame)
        assert isinstance(event, WebSocketHandshake)
        hub.handle(sink, event)
    assert wait_until(lambda: sorted(hub.sockets) == [(0, 7), (0, 8)], sleep=gevent.sleep)
    sink.sent.clear()
    hub.close_all()
    replies = [parse_reply(message) for message in sink.sent]
    for conn_id in (7, 8):
        mine = [r.body for r in replies if r.conn_ids == (conn_id,)]
        assert mine == [b"\x88\x13\x03\xe9server going away", b""]
    assert hub.sockets == {}
