"""Scaling without loss under a heavy load: 50 wrk connections on a 10 ms app through the real
Mongrel2, while ``decr`` and a rolling ``reload`` stop workers that have requests queued."""

from __future__ import annotations

import logging
import time

from tests.integration.test_live_scaling import served_by
from tests.integration.test_stack_up import _mongrel2_installed, base
from tests.reliability.load import finish_load, lost, slow_stack, start_load

__all__ = ["_mongrel2_installed", "base"]  # fixtures used here

log = logging.getLogger(__name__)
LOAD_SECONDS = 8


def test_decr_under_heavy_load_loses_zero_requests(base):
    with slow_stack(base, workers=4) as (stack, port):
        wrk = start_load(port, LOAD_SECONDS)
        time.sleep(1.5)
        assert stack.call("decr", name="hello", n=2)["numprocesses"] == 2
        stack.wait_until(lambda: len(stack.processes("hello")) == 2, timeout=LOAD_SECONDS)
        result = finish_load(wrk)
        log.warning("decr: %d requests, %d lost", result.requests, lost(result))
        assert lost(result) == 0, result.text
        assert result.non_2xx == 0, result.text
        assert result.requests > 2000


def test_rolling_reload_under_heavy_load_loses_zero_requests(base):
    with slow_stack(base, workers=3) as (stack, port):
        old = set(stack.pids("hello"))
        wrk = start_load(port, LOAD_SECONDS)
        time.sleep(1.5)
        assert stack.call("reload", name="hello") == {"watchers": ["hello"]}
        stack.wait_until(
            lambda: not old & {p["pid"] for p in stack.processes("hello")}, timeout=LOAD_SECONDS
        )
        result = finish_load(wrk)
        log.warning("reload: %d requests, %d lost", result.requests, lost(result))
        assert lost(result) == 0, result.text
        assert result.non_2xx == 0, result.text
        assert served_by(stack, set(stack.pids("hello"))) > 0
