"""Live changes under load, with the real Mongrel2 and the workers behind the relay (the one
multi-worker topology): incr, decr and a rolling reload lose no request (the heavy-load
version: tests/reliability/test_relay_scaling.py); a worker killed with SIGKILL is respawned
and only the requests it held fail.

Load is bounded: ``CLIENTS`` keep-alive client threads (``LoadLoop``), each with one request
outstanding and a 2 s timeout; every exception or non-200 counts as lost, and leaving the load
waits for the requests still outstanding, so a request lost on the wire is counted (wrk would
leave it hanging uncounted, see docs/reliability.md).
"""

from __future__ import annotations

import os
import signal

from tests.helpers.http import LoadLoop, get
from tests.helpers.load import wait_answered
from tests.helpers.stack import demo, served_by, wait_serving

CLIENTS = 8
#: Requests answered before a change (the load is running) and after it (serving goes on).
BEFORE, AFTER = 200, 500


def load(port: int) -> LoadLoop:
    return LoadLoop(port, threads=CLIENTS, timeout=2.0)


def test_incr_under_load_loses_no_request_and_shows_within_a_second(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        before = set(stack.pids("hello"))
        with load(port) as running:
            wait_answered(running, BEFORE)
            assert stack.call("incr", name="hello", n=2)["numprocesses"] == 4
            assert stack.wait_until(lambda: len(stack.processes("hello")) == 4) < 1.0
            stack.wait_until(lambda: len(stack.pids("hello")) == 4, timeout=10)
            new = set(stack.pids("hello")) - before
            # The relay keeps the load's keep-alive connections on their workers and gives
            # new connections to the new workers (most credit): their stats show it.
            stack.wait_until(lambda: get(port)[0] == 200 and served_by(stack, new) > 0)
            wait_answered(running, AFTER)
        assert running.failed == 0, running.errors[:5]


def test_decr_under_load_loses_no_request(base):
    with demo(base, workers=4) as (stack, port):
        wait_serving(stack, port, workers=4)
        with load(port) as running:
            wait_answered(running, BEFORE)
            assert stack.call("decr", name="hello", n=2)["numprocesses"] == 2
            took = stack.wait_until(lambda: len(stack.pids("hello")) == 2)
            assert took < 1.0
            stack.wait_until(lambda: len(stack.processes("hello")) == 2, timeout=10)
            assert sorted(p["wid"] for p in stack.processes("hello")) == [1, 2]
            wait_answered(running, AFTER)
        assert running.failed == 0, running.errors[:5]


def test_rolling_reload_under_load_loses_no_request(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        old = set(stack.pids("hello"))
        with load(port) as running:
            wait_answered(running, BEFORE)
            assert stack.call("reload", name="hello") == {"watchers": ["hello"]}
            stack.wait_until(lambda: not old & {p["pid"] for p in stack.processes("hello")})
            assert len(stack.pids("hello")) == 2
            new = set(stack.pids("hello"))
            stack.wait_until(lambda: served_by(stack, new) > 0, timeout=10)
            wait_answered(running, AFTER)
        assert running.failed == 0, running.errors[:5]


def test_sigkill_of_a_worker_under_load_fails_at_most_one_request_per_client(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        with load(port) as running:
            wait_answered(running, BEFORE)
            victim = next(p for p in stack.processes("hello") if p["wid"] == 2)
            os.kill(victim["pid"], signal.SIGKILL)
            stack.wait_until(
                lambda: any(
                    p["wid"] == 2 and p["pid"] != victim["pid"] and p["state"] == "ready"
                    for p in stack.processes("hello")
                ),
                timeout=10,
            )
            wait_answered(running, AFTER)
        # Each client has one request outstanding: at most one each was inside the killed worker.
        assert running.failed <= running.threads, running.errors[:5]
        assert "killed by SIGKILL" in stack.log()
        assert stack.status("hello")["state"] == "active"
