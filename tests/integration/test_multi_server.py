"""One worker, two real Mongrel2 servers: both are served, each reply goes to the right one."""

from __future__ import annotations

import threading

from m2bridge.worker.zmq_worker import default_sender_id
from tests.helpers.http import get
from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.worker import APPS, run_worker

APP = f"{APPS}.protocol:app"


def test_one_worker_serves_two_mongrel2_servers_at_once(tmp_path):
    first = HandlerSpec(route="/", protocol="json")
    second = HandlerSpec(route="/", protocol="tnetstring")
    specs = ([first.send_spec, second.send_spec], [first.recv_spec, second.recv_spec])
    with (
        run_mongrel2(tmp_path / "a", [first]) as server_a,
        run_mongrel2(tmp_path / "b", [second]) as server_b,
        run_worker(tmp_path / "w", APP, *specs, ["--worker-slot", "3"]) as worker,
    ):
        results = []

        def client(port):
            for _ in range(20):
                results.append((port, *get(port, "/hello", timeout=10)))

        threads = [threading.Thread(target=client, args=(s.port,)) for s in (server_a, server_b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(results) == 40
        assert all(status == 200 and body == b"hello\n" for _, status, body in results)
        assert {port for port, _, _ in results} == {server_a.port, server_b.port}
        # a long response on one server does not leak into the other
        assert get(server_b.port, "/stream?mb=1", timeout=10) == (200, b"\xa5" * (1 << 20))
        assert worker.log().count("Mongrel2 connected") == 2


def test_sender_id_is_stable_per_worker_slot():
    assert default_sender_id(3, "host.example") == default_sender_id(3, "host.example")
    assert default_sender_id(3, "host.example") == "m2bridge-host-example-3"
    assert default_sender_id(4, "host.example") != default_sender_id(3, "host.example")
