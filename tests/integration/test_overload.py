"""A flood beyond --max-in-flight through the real Mongrel2 gets 503s at once, not timeouts."""

from __future__ import annotations

import concurrent.futures
import http.client
import time

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

MUX = f"{APPS}.mux:app"
BOUND = 5
FLOOD = 40


def get(port, path):
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After"), time.monotonic() - started
    finally:
        conn.close()


def test_flood_beyond_the_bound_gets_503_with_retry_after(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    extra = ["--max-in-flight", str(BOUND)]
    with (
        run_mongrel2(tmp_path / "m2", [handler]) as server,
        run_worker(tmp_path / "w", MUX, [handler.send_spec], [handler.recv_spec], extra) as worker,
        concurrent.futures.ThreadPoolExecutor(FLOOD) as pool,
    ):
        futures = [pool.submit(get, server.port, "/sleepy/?seconds=2") for _ in range(FLOOD)]
        results = [future.result(timeout=20) for future in futures]
        statuses = [status for status, _, _ in results]
        assert statuses.count(200) >= BOUND
        assert statuses.count(503) >= FLOOD - 2 * BOUND
        assert set(statuses) == {200, 503}
        refused = [(retry, took) for status, retry, took in results if status == 503]
        assert all(retry == "1" for retry, _ in refused)
        assert max(took for _, took in refused) < 1.5  # answered at once, not after the sleep
        assert wait_until(lambda: worker.stats().get("rejected") == statuses.count(503), 3.0)
        assert get(server.port, "/hello/")[0] == 200


def test_timeout_answers_504_and_frees_the_greenlet(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    extra = ["--timeout", "0.5", "--max-in-flight", "1"]
    with (
        run_mongrel2(tmp_path / "m2", [handler]) as server,
        run_worker(tmp_path / "w", MUX, [handler.send_spec], [handler.recv_spec], extra) as worker,
    ):
        status, _, took = get(server.port, "/sleepy/?seconds=10")
        assert status == 504
        assert took < 2
        assert get(server.port, "/hello/")[0] == 200  # the one slot is free again
        assert wait_until(lambda: worker.stats().get("timed_out") == 1, 3.0), worker.stats()
