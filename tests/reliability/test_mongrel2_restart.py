"""Mongrel2 restarted under load: the workers stay up, reconnect, and serve again within 2 s
of the new Mongrel2 process starting."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import time

from tests.integration.test_stack_up import _mongrel2_installed, base, get
from tests.reliability.load import SLOW_PATH, heavy_load, report, slow_stack

__all__ = ["_mongrel2_installed", "base"]  # fixtures used here

log = logging.getLogger(__name__)
BACK_WITHIN = 2.0


def mongrel2_pid(stack) -> int | None:
    pids = [p["pid"] for p in stack.processes("mongrel2") if p["state"] == "ready"]
    return pids[0] if pids else None


def first_answer_after(port: int, deadline: float) -> float:
    """Poll until a request is answered 200; return the monotonic time it was."""
    while time.monotonic() < deadline:
        try:
            if get(port, SLOW_PATH, timeout=0.5)[0] == 200:
                return time.monotonic()
        except (OSError, http.client.HTTPException):
            time.sleep(0.02)
    raise AssertionError("not served again before the deadline")


def test_mongrel2_killed_under_load_workers_stay_and_serve_again_within_2s(base):
    with slow_stack(base, workers=2) as (stack, port):
        workers = set(stack.pids("hello"))
        old = mongrel2_pid(stack)
        assert old is not None
        with heavy_load(port, clients=10) as load:
            time.sleep(1.0)
            killed = time.monotonic()
            os.kill(old, signal.SIGKILL)
            stack.wait_until(lambda: mongrel2_pid(stack) not in (None, old), timeout=10)
            started = time.monotonic()  # the new Mongrel2 is up (its pid file is written)
            served = first_answer_after(port, started + 5)
            time.sleep(1.0)
            before = load.ok
            time.sleep(1.0)
            after = load.ok
        back = served - started
        log.warning(
            "mongrel2 kill -9: respawned in %.2f s, served %.2f s later; %s",
            started - killed,
            back,
            report("load (refused while down)", load),
        )
        assert back < BACK_WITHIN
        assert set(stack.pids("hello")) == workers  # no worker restarted
        assert after - before > 100  # the load is served again, not just one probe
        assert stack.log().count("went away; pausing until it is back") >= 2  # each worker saw it
