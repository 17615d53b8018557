"""download.flow_control through the real Mongrel2: a slow reader of 100 MiB keeps memory bounded.

With the setting on, the worker sends a streamed response only as fast as Mongrel2 reports the
client read it (credit notices), in pieces well below the fatal 102400-byte message; without
it, nothing changes (a 2 MiB body arrives whole).
"""

from __future__ import annotations

import http.client
import socket
import time

import psutil

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.worker import APPS, run_worker

APP = f"{APPS}.protocol:app"
MIB = 1 << 20
FLOW = {"download.flow_control": 1}


def rss(pid):
    return psutil.Process(pid).memory_info().rss


def read_slowly(sock, total_seconds, rate):
    """Read ``rate`` bytes per 50 ms for ``total_seconds``; return the bytes read."""
    received = 0
    deadline = time.monotonic() + total_seconds
    while time.monotonic() < deadline:
        received += len(sock.recv(rate))
        time.sleep(0.05)
    return received


def test_slow_reader_of_100_mib_keeps_worker_and_mongrel2_memory_bounded(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    with (
        run_mongrel2(tmp_path / "m2", [handler], settings=FLOW) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec]) as worker,
    ):
        base_worker, base_m2 = rss(worker.pid), rss(server.proc.pid)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            sock.sendall(b"GET /stream?mb=100 HTTP/1.1\r\nHost: x\r\n\r\n")
            received = read_slowly(sock, 3.0, 16384)  # about 1 MiB in 3 s
            peak_worker = rss(worker.pid) - base_worker
            peak_m2 = rss(server.proc.pid) - base_m2
            assert worker.stats().get("in_flight") == 1  # still streaming, held back
            while received < 100 * MIB:  # then read the rest at full speed
                chunk = sock.recv(1 << 20)
                assert chunk, f"connection closed after {received} bytes"
                received += len(chunk)
                if received % (16 * MIB) < len(chunk):
                    peak_worker = max(peak_worker, rss(worker.pid) - base_worker)
                    peak_m2 = max(peak_m2, rss(server.proc.pid) - base_m2)
        print(f"RSS growth: worker {peak_worker / MIB:.1f} MiB, mongrel2 {peak_m2 / MIB:.1f} MiB")
        assert peak_worker < 20 * MIB
        assert peak_m2 < 20 * MIB
        assert "m2bridge" not in server.error_log() or "kill" not in server.error_log()


def test_a_response_bigger_than_one_credit_window_arrives_whole(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    with (
        run_mongrel2(tmp_path / "m2", [handler], settings=FLOW) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec]),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(2):  # the second request on the connection carries no DOWNLOAD_CREDITS
            conn.request("GET", "/stream?mb=3")
            response = conn.getresponse()
            assert response.status == 200
            assert len(response.read()) == 3 * MIB
        conn.close()


def test_without_flow_control_a_stream_is_served_as_before(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    with (
        run_mongrel2(tmp_path / "m2", [handler]) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec]),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/stream?mb=2")
        response = conn.getresponse()
        assert len(response.read()) == 2 * MIB
        conn.close()
