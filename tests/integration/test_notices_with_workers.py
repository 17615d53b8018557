"""Two workers on one Handler, through the real Mongrel2: every notice reaches its connection.

Mongrel2 deals disconnect and credit notices round-robin over the workers, like requests; the
sibling notice bus (``m2bridge.worker.siblings``) passes them to the worker serving the connection.
The workers run as the supervisor runs them: each with ``--worker-slot`` and the
``M2BRIDGE_NOTICE_DIR`` of their watcher.
"""

from __future__ import annotations

import socket
import time
from functools import partial

from m2bridge.environment import NOTICE_DIR
from m2bridge.worker.siblings import SCAN_INTERVAL
from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

APP = f"{APPS}.protocol:app"
MIB = 1 << 20
CONNECTIONS = 10


def start_pair(stack, tmp_path, handler, extra=()):
    """Two workers of one watcher (slots 1 and 2) on ``handler``; wait until they found
    each other (the bus rescans its directory every ``SCAN_INTERVAL`` s)."""
    workers = [
        stack.enter_context(
            run_worker(
                tmp_path / f"w{slot}",
                APP,
                [handler.send_spec],
                [handler.recv_spec],
                [*extra, "--worker-slot", str(slot)],
            )
        )
        for slot in (1, 2)
    ]
    time.sleep(SCAN_INTERVAL + 0.5)
    return workers


def leave_mid_request(port, workers, marker):
    """Start ``/cancellable`` on a new connection, close it once it runs; return the index
    of the worker that serves it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /cancellable?marker={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        busy = lambda: [w.stats().get("in_flight") for w in workers]  # noqa: E731
        assert wait_until(lambda: 1 in busy(), 5), [w.log() for w in workers]
        return busy().index(1)


def cancelled(marker):
    return marker.exists() and marker.read_text() == "disconnected\ncancelled\n"


def test_every_client_leaving_cancels_its_request_whichever_worker_got_the_notice(
    tmp_path, monkeypatch
):
    import contextlib

    monkeypatch.setenv(NOTICE_DIR, str(tmp_path / "n"))
    handler = HandlerSpec(route="/", protocol="tnetstring")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(tmp_path / "m2", [handler]))
        workers = start_pair(stack, tmp_path, handler, ["--cancel-grace", "0.1"])
        served_by = []
        keep_alive = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
        for n in range(CONNECTIONS):
            if n % 3 == 1:  # one message more: the next request goes to the other worker
                keep_alive.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                assert keep_alive.recv(4096).endswith(b"hello\n")
            marker = tmp_path / f"marker{n}.txt"
            served_by.append(leave_mid_request(server.port, workers, marker))
            assert wait_until(partial(cancelled, marker), 3), (n, [w.log() for w in workers])
            assert wait_until(lambda: all(w.stats().get("in_flight") == 0 for w in workers), 3)
        # Request and disconnect of one connection alternate between the workers: a request
        # served by either worker had its disconnect dealt to the other.
        assert set(served_by) == {0, 1}
        assert wait_until(lambda: all(w.stats().get("in_flight") == 0 for w in workers), 2)


def test_a_flow_controlled_20_mib_stream_completes_with_two_workers(tmp_path, monkeypatch):
    import contextlib

    monkeypatch.setenv(NOTICE_DIR, str(tmp_path / "n"))
    handler = HandlerSpec(route="/", protocol="tnetstring")
    settings = {"download.flow_control": 1}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(tmp_path / "m2", [handler], settings=settings))
        workers = start_pair(stack, tmp_path, handler)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /stream?mb=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = bytearray()
            deadline = time.monotonic() + 20
            while (chunk := sock.recv(1 << 20)) and time.monotonic() < deadline:
                data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower()
        payload = b"".join(_dechunk(body))
        assert len(payload) == 20 * MIB, [w.log()[-2000:] for w in workers]
        assert set(payload) == {0xA5}


def _dechunk(body):
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return
        yield rest[:size]
        body = rest[size + 2 :]


def test_uploads_complete_when_start_and_done_go_to_different_workers(tmp_path, monkeypatch):
    """Mongrel2 deals an upload's ``start`` and ``done`` to different workers half the time;
    the start is shared on the bus, so whichever worker gets the ``done`` serves it."""
    import contextlib
    import hashlib
    import http.client
    import json

    monkeypatch.setenv(NOTICE_DIR, str(tmp_path / "n"))
    handler = HandlerSpec(route="/", protocol="tnetstring")
    chroot = tmp_path / "m2"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(chroot, [handler]))
        extra = ["--m2-chroot", str(chroot), "--upload-temp-store", "/tmp/upload.XXXXXX"]
        for slot in (1, 2):
            stack.enter_context(
                run_worker(
                    tmp_path / f"w{slot}",
                    "handlers.upload:app",
                    [handler.send_spec],
                    [handler.recv_spec],
                    [*extra, "--worker-slot", str(slot)],
                )
            )
        time.sleep(SCAN_INTERVAL + 0.5)
        body = bytes(range(256)) * 400  # 102,400 bytes: over limits.content_length
        for _ in range(6):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", "/up", body=body)
            response = conn.getresponse()
            answer = response.read()
            conn.close()
            assert response.status == 200, answer
            result = json.loads(answer)
            assert result["size"] == len(body)
            assert result["sha256"] == hashlib.sha256(body).hexdigest()
        assert list((chroot / "tmp").glob("upload.*")) == []  # every temp file was deleted


def test_uploads_started_before_the_second_worker_came_up_complete_on_either_worker(
    tmp_path, monkeypatch
):
    """The starts reach worker 1 alone and are shared while no sibling listens; worker 2
    comes up, Mongrel2 deals it half the ``done``s, and worker 1 replays the starts it
    still holds once worker 2 subscribes to its notices."""
    import contextlib
    import hashlib
    import json

    monkeypatch.setenv(NOTICE_DIR, str(tmp_path / "n"))
    handler = HandlerSpec(route="/", protocol="tnetstring")
    chroot = tmp_path / "m2"
    extra = ["--m2-chroot", str(chroot), "--upload-temp-store", "/tmp/upload.XXXXXX"]
    body = bytes(range(256)) * 400  # 102,400 bytes: over limits.content_length
    head = f"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()

    def worker(stack, slot):
        argv = [*extra, "--worker-slot", str(slot)]
        app, specs = "handlers.upload:app", ([handler.send_spec], [handler.recv_spec])
        return stack.enter_context(run_worker(tmp_path / f"w{slot}", app, *specs, argv))

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(chroot, [handler]))
        first = worker(stack, 1)
        clients = [
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            for _ in range(4)
        ]
        for client in clients:
            client.sendall(head + body[:1000])
        assert wait_until(lambda: len(list((chroot / "tmp").glob("upload.*"))) == 4, 5)
        time.sleep(0.2)  # the starts are in worker 1 and shared with no one
        second = worker(stack, 2)
        for client in clients:
            client.sendall(body[1000:])
        answers = [_read_response(client) for client in clients]
        logs = [w.log() for w in (first, second)]
        for status, payload in answers:
            assert status == 200, (payload, logs)
            result = json.loads(payload)
            assert result["sha256"] == hashlib.sha256(body).hexdigest()
        served = lambda: [w.stats().get("served", 0) for w in (first, second)]  # noqa: E731
        assert wait_until(lambda: sum(served()) == 4, 5), (served(), logs)
        assert all(served()), (served(), logs)  # both workers served some of the four
        assert wait_until(lambda: list((chroot / "tmp").glob("upload.*")) == [], 5)


def _read_response(sock):
    """(status, body) of one Content-Length response read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, body
        body += chunk
    return int(head.split(b" ", 2)[1]), body
