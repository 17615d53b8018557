"""The fd-path worker as a real subprocess serving HTTP on a socket the test created."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from m2bridge.errors import ConfigError
from m2bridge.worker.fd_worker import inherit_listener
from tests.helpers.waiting import wait_until

APP = """
import gevent

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/crash":
        raise RuntimeError("boom")
    if path.startswith("/sleep/"):
        gevent.sleep(float(path.rsplit("/", 1)[1]))
    body = ("hello " + path).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

RUN_WORKER = (
    "import json, sys\n"
    "from m2bridge.config import WorkerConfig\n"
    "from m2bridge.worker.fd_worker import main\n"
    "sys.exit(main(WorkerConfig(**json.loads(sys.argv[1]))))\n"
)


class Worker:
    """One fd-path worker subprocess (``main`` via ``python -c``, or ``argv``), stderr in a file."""

    def __init__(
        self,
        tmp_path: Path,
        options: dict[str, Any],
        pass_fds: tuple[int, ...],
        argv: list[str] | None = None,
    ) -> None:
        self.log_path = tmp_path / f"worker-{len(list(tmp_path.glob('worker-*')))}.log"
        config = json.dumps({"app": "fdapp:app", **options})
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv or [sys.executable, "-c", RUN_WORKER, config],
                cwd=tmp_path,
                pass_fds=pass_fds,
                stderr=log,
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    (tmp_path / "fdapp.py").write_text(APP)
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


def start(
    workers: list[Worker],
    tmp_path: Path,
    fd: int | None = None,
    *,
    inherit: bool = True,
    **options: Any,
) -> Worker:
    """Start a worker on ``fd`` (passed to the child unless ``inherit`` is false)."""
    if fd is not None:
        options["fd"] = fd
    worker = Worker(tmp_path, options, (fd,) if fd is not None and inherit else ())
    workers.append(worker)
    return worker


def get(conn: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def read_stats(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_keep_alive_requests_do_not_wait_for_delayed_acks(workers, tmp_path, listener):
    start(workers, tmp_path, listener.fileno())
    conn = connect(port_of(listener))
    assert get(conn, "/warm-up").status == 200
    began = time.monotonic()
    for i in range(50):
        response = get(conn, f"/n{i}")
        assert response.status == 200
    assert time.monotonic() - began < 2.0  # ~40 ms each without TCP_NODELAY would be > 2 s
    conn.close()


def test_response_carries_the_app_body(workers, tmp_path, listener):
    start(workers, tmp_path, listener.fileno())
    conn = connect(port_of(listener))
    conn.request("GET", "/abc")
    assert conn.getresponse().read() == b"hello /abc"
    conn.close()


def test_crashing_app_answers_500_and_worker_keeps_serving(workers, tmp_path, listener):
    worker = start(workers, tmp_path, listener.fileno())
    conn = connect(port_of(listener))
    assert get(conn, "/crash").status == 500
    assert get(conn, "/after").status == 200
    assert worker.proc.poll() is None
    assert "RuntimeError: boom" in worker.log()
    conn.close()


def test_sigterm_finishes_the_slow_request_in_flight_then_exits_0(workers, tmp_path, listener):
    stats = tmp_path / "stats.json"
    worker = start(workers, tmp_path, listener.fileno(), graceful_timeout=10, stats_file=str(stats))
    idle = connect(port_of(listener))
    assert get(idle, "/idle-keep-alive").status == 200
    slow = connect(port_of(listener))
    slow.request("GET", "/sleep/1")
    assert wait_until(lambda: read_stats(stats).get("in_flight") == 1), read_stats(stats)
    began = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    response = slow.getresponse()
    assert (response.status, response.read()) == (200, b"hello /sleep/1")
    assert response.getheader("Connection") == "close"
    assert worker.wait() == 0
    assert time.monotonic() - began < 5  # the idle keep-alive connection did not hold it
    idle.close()
    slow.close()


def test_request_past_the_graceful_timeout_gets_503(workers, tmp_path, listener):
    stats = tmp_path / "stats.json"
    worker = start(
        workers, tmp_path, listener.fileno(), graceful_timeout=0.5, stats_file=str(stats)
    )
    slow = connect(port_of(listener))
    assert get(slow, "/ready").status == 200
    slow.request("GET", "/sleep/20")
    assert wait_until(lambda: read_stats(stats).get("in_flight") == 1), read_stats(stats)
    worker.proc.send_signal(signal.SIGTERM)
    response = slow.getresponse()
    assert (response.status, response.getheader("Connection")) == (503, "close")
    assert worker.wait() == 0
    assert "cut off" in worker.log()
    slow.close()


def test_request_past_timeout_gets_504(workers, tmp_path, listener):
    worker = start(workers, tmp_path, listener.fileno(), timeout=0.3)
    conn = connect(port_of(listener))
    response = get(conn, "/sleep/5")
    assert (response.status, response.getheader("Connection")) == (504, "close")
    assert "ran past --timeout" in worker.log()
    conn.close()
    again = connect(port_of(listener))
    assert get(again, "/quick").status == 200
    again.close()


def test_worker_exits_0_after_max_requests(workers, tmp_path, listener):
    stats = tmp_path / "stats.json"
    worker = start(workers, tmp_path, listener.fileno(), max_requests=5, stats_file=str(stats))
    conn = connect(port_of(listener))
    for i in range(5):
        assert get(conn, f"/n{i}").status == 200
    assert worker.wait() == 0
    assert json.loads(stats.read_text())["served"] == 5
    conn.close()


def test_stats_file_holds_the_counters(workers, tmp_path, listener):
    stats = tmp_path / "stats.json"
    worker = start(workers, tmp_path, listener.fileno(), stats_file=str(stats))
    conn = connect(port_of(listener))
    for path in ("/a", "/b", "/crash"):
        get(conn, path)
    assert wait_until(lambda: read_stats(stats).get("served") == 3), read_stats(stats)
    data = read_stats(stats)
    assert {k: data[k] for k in ("pid", "served", "in_flight", "errors")} == {
        "pid": worker.proc.pid,
        "served": 3,
        "in_flight": 0,
        "errors": 1,
    }
    assert 0 < time.time() - data["started_at"] < 60
    conn.close()


def test_stats_file_from_the_environment(workers, tmp_path, listener, monkeypatch):
    stats = tmp_path / "env-stats.json"
    monkeypatch.setenv("M2BRIDGE_STATS_FILE", str(stats))
    worker = start(workers, tmp_path, listener.fileno())
    conn = connect(port_of(listener))
    assert get(conn, "/one").status == 200
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert json.loads(stats.read_text())["served"] == 1
    conn.close()


def test_access_log_gets_one_line_per_request(workers, tmp_path, listener):
    access = tmp_path / "access.log"
    worker = start(workers, tmp_path, listener.fileno(), access_log=str(access))
    conn = connect(port_of(listener))
    get(conn, "/logged")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 0
    lines = access.read_text().splitlines()
    assert len(lines) == 1
    assert '"GET /logged HTTP/1.1" 200 13 ' in lines[0]
    conn.close()


def test_bind_serves_on_its_own_socket(workers, tmp_path):
    worker = start(workers, tmp_path, bind="127.0.0.1:0")
    listening = re.compile(r"on \('127\.0\.0\.1', (\d+)\)")
    assert wait_until(lambda: listening.search(worker.log()), timeout=10), worker.log()
    found = listening.search(worker.log())
    assert found
    conn = connect(int(found.group(1)))
    assert get(conn, "/bound").status == 200
    conn.close()


def test_bind_to_a_port_in_use_exits_1(workers, tmp_path, listener):
    worker = start(workers, tmp_path, bind=f"127.0.0.1:{port_of(listener)}")
    assert worker.wait() == 1
    assert "--bind" in worker.log()
    assert "in use" in worker.log()


def test_closed_fd_exits_1_with_a_clear_message(workers, tmp_path):
    worker = start(workers, tmp_path, 250, inherit=False)
    assert worker.wait() == 1
    assert "--fd 250: not an open socket" in worker.log()


def test_fd_that_is_not_a_socket_exits_1(workers, tmp_path):
    read_end, write_end = os.pipe()
    try:
        worker = start(workers, tmp_path, read_end)
        assert worker.wait() == 1
        assert f"--fd {read_end}: not an open socket" in worker.log()
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (socket.SOCK_DGRAM, "expected SOCK_STREAM"),
        (socket.SOCK_STREAM, "not listening"),
    ],
)
def test_fd_that_is_not_a_listening_stream_socket_exits_1(workers, tmp_path, kind, message):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        worker = start(workers, tmp_path, sock.fileno())
        assert worker.wait() == 1
    assert message in worker.log()


def test_unknown_app_exits_1(workers, tmp_path, listener):
    worker = start(workers, tmp_path, listener.fileno(), app="nosuchmodule:app")
    assert worker.wait() == 1
    assert "nosuchmodule" in worker.log()


def test_inherited_listener_is_made_non_blocking(listener):
    fd = os.dup(listener.fileno())
    os.set_blocking(fd, True)
    sock = inherit_listener(fd)
    try:
        assert not sock.getblocking()
        assert not os.get_blocking(fd)
        assert sock.getsockname() == listener.getsockname()
    finally:
        sock.close()


def test_refused_fd_is_left_open_for_its_owner():
    with socket.socket() as sock:
        with pytest.raises(ConfigError, match="not listening"):
            inherit_listener(sock.fileno())
        assert sock.fileno() != -1
        os.fstat(sock.fileno())  # still open: raises OSError if inherit_listener closed it


def test_serve_cli_with_fd_runs_the_fd_worker(workers, tmp_path, listener):
    fd = listener.fileno()
    argv = [sys.executable, "-m", "m2bridge", "serve", "fdapp:app", "--fd", str(fd)]
    worker = Worker(tmp_path, {}, (fd,), argv=[*argv, "--max-requests", "1"])
    workers.append(worker)
    conn = connect(port_of(listener))
    assert get(conn, "/via-cli").status == 200
    assert worker.wait() == 0
    assert "m2bridge.worker.fd_worker" in worker.log()
    conn.close()


def test_malformed_request_gets_400_and_its_own_access_log_line(workers, tmp_path, listener):
    access = tmp_path / "access.log"
    worker = start(workers, tmp_path, listener.fileno(), access_log=str(access))
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        raw.sendall(b"GET /fine HTTP/1.1\r\nHost: t\r\n\r\n")
        reply = b""
        while not reply.endswith(b"hello /fine"):  # header block and body come in two sends
            reply += raw.recv(4096) or pytest.fail(f"closed after {reply!r}")
        assert reply.startswith(b"HTTP/1.1 200 ")
        raw.sendall(b"BROKEN\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 400 ")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 0
    lines = access.read_text().splitlines()
    assert len(lines) == 2
    assert '"BROKEN - -" 400 0 ' in lines[1]
