"""Mongrel2 restarted under load: the workers stay up, reconnect, and serve again within 2 s
of the new Mongrel2 process starting."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import time

from tests.helpers.http import get
from tests.helpers.load import SLOW_PATH, heavy_load, report, slow_stack, wait_answered
from tests.helpers.waiting import wait_until

log = logging.getLogger(__name__)
BACK_WITHIN = 2.0


def mongrel2_pid(stack) -> int | None:
    pids = [p["pid"] for p in stack.processes("mongrel2") if p["state"] == "ready"]
    return pids[0] if pids else None


def answered(port: int) -> bool:
    """Whether a request is answered 200 now."""
    try:
        return get(port, SLOW_PATH, timeout=0.5)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def first_answer_within(port: int, timeout: float) -> float:
    """Poll until a request is answered 200; return the monotonic time it was."""
    assert wait_until(lambda: answered(port), timeout), f"not served again within {timeout} s"
    return time.monotonic()


def test_mongrel2_killed_under_load_workers_stay_and_serve_again_within_2s(base):
    with slow_stack(base, workers=2) as (stack, port):
        workers = set(stack.pids("hello"))
        old = mongrel2_pid(stack)
        assert old is not None
        with heavy_load(port, clients=10) as load:
            wait_answered(load, 200)
            killed = time.monotonic()
            os.kill(old, signal.SIGKILL)
            stack.wait_until(lambda: mongrel2_pid(stack) not in (None, old), timeout=10)
            started = time.monotonic()  # the new Mongrel2 is up (its pid file is written)
            served = first_answer_within(port, 5)
            wait_answered(load, 100)  # the load is served again, not just one probe
        back = served - started
        log.warning(
            "mongrel2 kill -9: respawned in %.2f s, served %.2f s later; %s",
            started - killed,
            back,
            report("load (refused while down)", load),
        )
        assert back < BACK_WITHIN
        assert set(stack.pids("hello")) == workers  # no worker restarted
        assert stack.log().count("went away; pausing until it is back") >= 2  # each worker saw it
