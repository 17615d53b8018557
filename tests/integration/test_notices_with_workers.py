"""Two workers behind the relay, through the real Mongrel2: every notice reaches its connection.

Mongrel2 deals disconnect and credit notices round-robin, like requests, over whatever is
connected to one ``send_spec``. Several workers therefore run behind ``m2bridge relay``
(docs/relay.md), which sends a disconnect to the workers that served the connection, credits
to the one writing its response, and an upload's ``done`` to the worker that got its ``start``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2, stop_process
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, REPO_ROOT, WorkerProcess, run_worker

APP = f"{APPS}.protocol:app"
UPLOAD_APP = "handlers.upload:app"
MIB = 1 << 20
CONNECTIONS = 10
#: Over ``limits.content_length``: Mongrel2 sends an upload start, then its done.
UPLOAD_BODY = bytes(range(256)) * 400


@contextlib.contextmanager
def running_relay(directory: Path, handler: HandlerSpec) -> Iterator[str]:
    """``m2bridge relay`` reading ``handler``'s send_spec; yields the endpoint workers use.

    It is stopped by PID (after the workers, which say ``bye`` to it when they stop).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "relay.ipc"
    bind = f"ipc://{path}"
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", handler.send_spec]
    log_path = directory / "relay.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*argv, "--bind", bind], cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until(lambda: path.exists() or proc.poll() is not None, 10)
        assert proc.poll() is None, log_path.read_text()
        yield bind
    finally:
        stop_process(proc, timeout=10)


def relay_worker(
    stack: contextlib.ExitStack,
    directory: Path,
    app: str,
    relay: str,
    handler: HandlerSpec,
    extra: Sequence[str] = (),
) -> WorkerProcess:
    """One ``serve --relay`` worker of ``app``, stopped when ``stack`` closes."""
    argv = ["--relay", relay, "--recv-spec", handler.recv_spec, *extra]
    return stack.enter_context(run_worker(directory, app, [], [], argv))


def leave_mid_request(port: int, workers: list[WorkerProcess], marker: Path) -> int:
    """Start ``/cancellable`` on a new connection, close it once it runs; return the index
    of the worker that serves it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /cancellable?marker={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        busy = lambda: [w.stats().get("in_flight") for w in workers]  # noqa: E731
        assert wait_until(lambda: 1 in busy(), 5), [w.log() for w in workers]
        return busy().index(1)


def cancelled(marker: Path) -> bool:
    return marker.exists() and marker.read_text() == "disconnected\ncancelled\n"


def served(workers: Sequence[WorkerProcess]) -> list[int]:
    return [int(w.stats().get("served", 0)) for w in workers]


def test_every_client_leaving_cancels_its_request_on_whichever_worker_serves_it(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(tmp_path / "m2", [handler]))
        relay = stack.enter_context(running_relay(tmp_path / "relay", handler))
        workers = [
            relay_worker(stack, tmp_path / f"w{n}", APP, relay, handler, ["--cancel-grace", "0.1"])
            for n in (1, 2)
        ]
        served_by = []
        for n in range(CONNECTIONS):
            marker = tmp_path / f"marker{n}.txt"
            served_by.append(leave_mid_request(server.port, workers, marker))
            assert wait_until(partial(cancelled, marker), 3), (n, [w.log() for w in workers])
            assert wait_until(lambda: all(w.stats().get("in_flight") == 0 for w in workers), 3)
        # New connections are spread by credit: both workers had requests to cancel.
        assert set(served_by) == {0, 1}


def test_a_flow_controlled_20_mib_stream_completes_with_two_workers(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    settings = {"download.flow_control": 1}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(tmp_path / "m2", [handler], settings=settings))
        relay = stack.enter_context(running_relay(tmp_path / "relay", handler))
        workers = [relay_worker(stack, tmp_path / f"w{n}", APP, relay, handler) for n in (1, 2)]
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


def _dechunk(body: bytes) -> Iterator[bytes]:
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return
        yield rest[:size]
        body = rest[size + 2 :]


def upload_extra(chroot: Path) -> list[str]:
    return ["--m2-chroot", str(chroot), "--upload-temp-store", "/tmp/upload.XXXXXX"]


def test_uploads_on_new_connections_complete_on_both_workers(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    chroot = tmp_path / "m2"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(chroot, [handler]))
        relay = stack.enter_context(running_relay(tmp_path / "relay", handler))
        workers = [
            relay_worker(
                stack, tmp_path / f"w{n}", UPLOAD_APP, relay, handler, upload_extra(chroot)
            )
            for n in (1, 2)
        ]
        for _ in range(6):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", "/up", body=UPLOAD_BODY)
            response = conn.getresponse()
            answer = response.read()
            conn.close()
            assert response.status == 200, (answer, [w.log() for w in workers])
            result = json.loads(answer)
            assert result["size"] == len(UPLOAD_BODY)
            assert result["sha256"] == hashlib.sha256(UPLOAD_BODY).hexdigest()
        assert wait_until(lambda: sum(served(workers)) == 6, 5), served(workers)
        assert all(served(workers)), served(workers)  # spread by credit, each done where started
        assert list((chroot / "tmp").glob("upload.*")) == []  # every temp file was deleted


def test_uploads_started_before_a_second_worker_came_up_finish_where_they_started(tmp_path):
    """The starts reach worker 1 alone; worker 2 comes up with more credit, yet every
    ``done`` still goes to worker 1, which holds the start."""
    handler = HandlerSpec(route="/", protocol="tnetstring")
    chroot = tmp_path / "m2"
    head = f"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len(UPLOAD_BODY)}\r\n\r\n".encode()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_mongrel2(chroot, [handler]))
        relay = stack.enter_context(running_relay(tmp_path / "relay", handler))
        extra = upload_extra(chroot)
        first = relay_worker(stack, tmp_path / "w1", UPLOAD_APP, relay, handler, extra)
        clients = [
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            for _ in range(4)
        ]
        for client in clients:
            client.sendall(head + UPLOAD_BODY[:1000])
        assert wait_until(lambda: len(list((chroot / "tmp").glob("upload.*"))) == 4, 5)
        second = relay_worker(stack, tmp_path / "w2", UPLOAD_APP, relay, handler, extra)
        for client in clients:
            client.sendall(UPLOAD_BODY[1000:])
        answers = [_read_response(client) for client in clients]
        logs = [w.log() for w in (first, second)]
        for status, payload in answers:
            assert status == 200, (payload, logs)
            assert json.loads(payload)["sha256"] == hashlib.sha256(UPLOAD_BODY).hexdigest()
        assert wait_until(lambda: served([first, second]) == [4, 0], 5), served([first, second])
        assert wait_until(lambda: list((chroot / "tmp").glob("upload.*")) == [], 5)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
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
