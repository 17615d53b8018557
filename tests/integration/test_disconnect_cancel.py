"""A client leaving mid-request, through the real Mongrel2: the app is told, then cancelled."""

from __future__ import annotations

import socket
import time

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

APP = f"{APPS}.protocol:app"


def test_client_leaving_sets_disconnected_then_cancels_the_work(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    marker = tmp_path / "marker.txt"
    extra = ["--cancel-grace", "0.5"]
    with (
        run_mongrel2(tmp_path / "m2", [handler]) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec], extra) as worker,
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(f"GET /cancellable?marker={marker} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert wait_until(lambda: worker.stats().get("in_flight") == 1, 5), worker.stats()
        left = time.monotonic()
        assert wait_until(lambda: marker.exists(), 2), worker.log()
        told = time.monotonic() - left
        assert wait_until(lambda: "cancelled" in marker.read_text(), 3), worker.log()
        cancelled = time.monotonic() - left
        assert marker.read_text() == "disconnected\ncancelled\n"
        assert told < 0.4  # told at once
        assert 0.4 <= cancelled < 2.0  # cancelled after --cancel-grace
        assert wait_until(lambda: worker.stats().get("in_flight") == 0, 2)
        before = len(server.error_log())
        time.sleep(0.5)
        assert len(server.error_log()) == before  # no notice ping-pong: nothing sent to the id
