"""Live changes under load, with the real Mongrel2: incr loses no request; decr and reload
with workers connected straight to Mongrel2 lose at most the few requests on the wire to a
stopping worker (libzmq drops them; the relay makes that zero, see
tests/reliability/test_relay_scaling.py); a worker killed with SIGKILL is respawned and only
the requests it held fail.

Load is bounded: wrk with 8 connections for a few seconds (or a 6-thread Python loop), and
every failure wrk can see (socket errors, timeouts after 2 s, non-2xx) counts as lost.
"""

from __future__ import annotations

import os
import signal
import time

from tests.integration.test_stack_up import (
    LoadLoop,
    _mongrel2_installed,
    base,
    demo,
    finish_wrk,
    start_wrk,
    wait_serving,
)

__all__ = ["_mongrel2_installed", "base"]  # fixtures used here

LOAD_SECONDS = 5
#: Requests that can be on the wire to one stopping worker in direct mode (wrk, 8 connections).
ON_THE_WIRE = 8


def served_by(stack, pids: set[int]) -> int:
    return sum(p["served"] or 0 for p in stack.processes("hello") if p["pid"] in pids)


def test_incr_under_load_loses_nothing_and_shows_within_a_second(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        wrk = start_wrk(port, LOAD_SECONDS)
        time.sleep(1.0)
        before = set(stack.pids("hello"))
        assert stack.call("incr", name="hello", n=2)["numprocesses"] == 4
        assert stack.wait_until(lambda: len(stack.processes("hello")) == 4) < 1.0
        stack.wait_until(lambda: len(stack.pids("hello")) == 4, timeout=10)
        result = finish_wrk(wrk)
        assert result.failed == 0, result.text
        assert result.requests > 1000
        new = set(stack.pids("hello")) - before
        assert served_by(stack, new) > 0  # Mongrel2 really sends work to the new workers


def test_decr_under_load_loses_at_most_what_was_on_the_wire(base):
    with demo(base, workers=4) as (stack, port):
        wait_serving(stack, port, workers=4)
        wrk = start_wrk(port, LOAD_SECONDS)
        time.sleep(1.0)
        assert stack.call("decr", name="hello", n=2)["numprocesses"] == 2
        took = stack.wait_until(lambda: len(stack.pids("hello")) == 2)
        assert took < 1.0
        stack.wait_until(lambda: len(stack.processes("hello")) == 2, timeout=10)
        assert sorted(p["wid"] for p in stack.processes("hello")) == [1, 2]
        result = finish_wrk(wrk)
        assert result.failed <= 2 * ON_THE_WIRE, result.text
        assert result.requests > 1000


def test_reload_under_load_loses_at_most_what_was_on_the_wire(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        old = set(stack.pids("hello"))
        wrk = start_wrk(port, LOAD_SECONDS + 1)
        time.sleep(1.0)
        assert stack.call("reload", name="hello") == {"watchers": ["hello"]}
        stack.wait_until(
            lambda: not old & {p["pid"] for p in stack.processes("hello")}, timeout=LOAD_SECONDS
        )
        assert len(stack.pids("hello")) == 2
        result = finish_wrk(wrk)
        assert result.failed <= 2 * ON_THE_WIRE, result.text
        assert result.requests > 1000
        assert served_by(stack, set(stack.pids("hello"))) > 0


def test_sigkill_of_a_worker_under_load_fails_only_what_it_held(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        with LoadLoop(port, threads=6, timeout=3.0) as load:
            time.sleep(1.0)
            victim = next(p for p in stack.processes("hello") if p["wid"] == 2)
            os.kill(victim["pid"], signal.SIGKILL)
            stack.wait_until(
                lambda: any(
                    p["wid"] == 2 and p["pid"] != victim["pid"] and p["state"] == "ready"
                    for p in stack.processes("hello")
                ),
                timeout=10,
            )
            time.sleep(LOAD_SECONDS - 1)
        assert load.ok > 500
        # At most one request per client thread can have been inside the killed worker.
        assert load.failed <= load.threads, load.errors
        assert "killed by SIGKILL" in stack.log()
        assert stack.status("hello")["state"] == "active"
