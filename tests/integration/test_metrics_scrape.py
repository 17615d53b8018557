"""A real scrape of the supervisor's /metrics under load, on the demo stack with real
Mongrel2, parsed with prometheus_client's parser; and /healthz agreeing with ``ctl status``."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from m2bridge.worker.stats import PUBLISH_INTERVAL
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import RunningStack, example_stack, running_stack, wait_serving

REQUESTS_PER_CLIENT = 150
CLIENTS = 4
SENT = REQUESTS_PER_CLIENT * CLIENTS

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, int, int]]:
    base = Path(tmp_path_factory.mktemp("m", numbered=True))
    short = Path(f"/tmp/m2b-metrics-{base.name}")  # ipc paths must stay short
    short.mkdir()
    text, port = example_stack(short, "stack.toml")
    metrics = free_port()
    text += f'\n[metrics]\naddress = "127.0.0.1:{metrics}"\n'
    with running_stack(short, text) as running:
        wait_serving(running, port, workers=2)
        yield running, port, metrics
    subprocess.run(["rm", "-rf", str(short)], check=False)


def scrape(metrics_port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def healthz(metrics_port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def client(port: int, answered: list[int]) -> None:
    """REQUESTS_PER_CLIENT keep-alive GETs; appends the status of each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(REQUESTS_PER_CLIENT):
            conn.request("GET", "/")
            reply = conn.getresponse()
            reply.read()
            answered.append(reply.status)
    finally:
        conn.close()


HELLO = (("watcher", "hello"),)


def settled(metrics_port: int) -> Samples:
    """A scrape once the workers have published what they served so far (every 0.5 s)."""
    previous = scrape(metrics_port)
    for _ in range(20):
        time.sleep(PUBLISH_INTERVAL + 0.1)
        current = scrape(metrics_port)
        if current["m2bridge_requests_total", HELLO] == previous["m2bridge_requests_total", HELLO]:
            return current
        previous = current
    raise AssertionError("the served counter never settled")


def test_counters_rise_by_exactly_the_requests_sent_and_histograms_count_them(stack):
    running, port, metrics = stack
    before = settled(metrics)
    answered: list[int] = []
    threads = [threading.Thread(target=client, args=(port, answered)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    during = scrape(metrics)  # a scrape under load parses too
    for thread in threads:
        thread.join(30)
    assert answered.count(200) == SENT

    def served() -> float:
        return scrape(metrics)["m2bridge_requests_total", HELLO]

    wanted = before["m2bridge_requests_total", HELLO] + SENT
    running.wait_until(lambda: served() >= wanted, timeout=5)  # workers publish every 0.5 s
    after = scrape(metrics)

    def rise(name: str, labels: tuple[tuple[str, str], ...] = HELLO) -> float:
        return after[name, labels] - before[name, labels]

    assert rise("m2bridge_requests_total") == SENT
    assert rise("m2bridge_request_app_seconds_count") == SENT
    assert rise("m2bridge_request_queue_seconds_count") == SENT
    assert rise("m2bridge_request_app_seconds_bucket", (("le", "+Inf"), *HELLO)) == SENT
    assert rise("m2bridge_requests_5xx_total") == 0
    assert rise("m2bridge_requests_rejected_total") == 0
    assert after["m2bridge_requests_in_flight", HELLO] == 0
    assert during["m2bridge_healthy", ()] == 1
    per_process = sum(
        value for (name, labels), value in after.items()
        if name == "m2bridge_process_requests_total" and ("watcher", "hello") in labels
    )  # fmt: skip
    assert per_process == after["m2bridge_requests_total", HELLO]  # no worker replaced
    (hello,) = running.call("stats", name="hello")["watchers"]  # the same source as ctl --json
    assert hello["totals"]["served"] == after["m2bridge_requests_total", HELLO]


def test_mongrel2_open_connections_come_from_its_control_port(stack):
    running, port, metrics = stack
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
    try:

        def connections() -> float:
            return scrape(metrics).get(
                ("m2bridge_mongrel2_connections", (("watcher", "mongrel2"),)), 0
            )

        running.wait_until(lambda: connections() >= 5, timeout=5)
        assert scrape(metrics)["m2bridge_mongrel2_tasks", (("watcher", "mongrel2"),)] > 0
    finally:
        for sock in idle:
            sock.close()


def test_healthz_and_ctl_status_agree_when_mongrel2_stops_and_starts(stack):
    running, _port, metrics = stack
    assert healthz(metrics) == (200, {"healthy": True, "problems": []})
    assert running.ctl("status").returncode == 0
    running.call("stop", name="mongrel2")
    running.wait_until(lambda: healthz(metrics)[0] == 503, timeout=10)
    assert running.ctl("status").returncode == 4
    assert healthz(metrics)[1]["problems"] == ["not running as asked: mongrel2 (stopped)"]
    assert scrape(metrics)["m2bridge_healthy", ()] == 0
    running.call("start", name="mongrel2")
    running.wait_until(lambda: healthz(metrics)[0] == 200, timeout=15)
    assert running.ctl("status").returncode == 0


def test_a_frozen_mongrel2_makes_the_stack_unhealthy(stack):
    running, _port, metrics = stack
    (pid,) = running.pids("mongrel2")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        running.wait_until(lambda: healthz(metrics)[0] == 503, timeout=10)
        assert time.monotonic() - started < 5  # the probe's 2 s timeout plus its interval
        assert "control port" in str(healthz(metrics)[1]["problems"])
        assert running.ctl("status").returncode == 4
        assert scrape(metrics)["m2bridge_mongrel2_up", (("watcher", "mongrel2"),)] == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    running.wait_until(lambda: healthz(metrics)[0] == 200, timeout=10)
