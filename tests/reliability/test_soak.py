"""Soak: 100,000 requests through one worker and the real Mongrel2, RSS growth under 5 MB
and no file-descriptor leak (measured after a warm-up, so caches and pools are filled)."""

from __future__ import annotations

import logging
import time
from functools import partial

import psutil
import pytest

from tests.helpers.http import finish_wrk, start_wrk
from tests.helpers.stack import demo, wait_serving
from tests.helpers.waiting import wait_until

log = logging.getLogger(__name__)
REQUESTS = 100_000
WARMUP = 10_000
BUDGET_SECONDS = 56
MIB = 1 << 20


def served(stack) -> int:
    return int(stack.processes("hello")[0]["served"] or 0)


def served_at_least(stack, count: int) -> bool:
    return served(stack) >= count


def drive(stack, port: int, until: int, deadline: float) -> int:
    """Run wrk bursts until the worker has served ``until`` requests; return socket errors."""
    errors = 0
    while (before := served(stack)) < until:
        assert time.monotonic() < deadline, f"only {before} requests served in time"
        result = finish_wrk(start_wrk(port, 4, connections=16))
        errors += sum(result.socket_errors.values()) + result.non_2xx
        # the stats file is published within 0.5 s: wait until it counts this burst
        counted = before + result.requests
        assert wait_until(partial(served_at_least, stack, counted), 5), result.text
    return errors


@pytest.mark.timeout(70)
def test_100k_requests_through_one_worker_grow_rss_under_5mb_and_leak_no_fd(base):
    deadline = time.monotonic() + BUDGET_SECONDS
    with demo(base, workers=1) as (stack, port):
        wait_serving(stack, port, workers=1)
        worker = psutil.Process(stack.pids("hello")[0])
        errors = drive(stack, port, WARMUP, deadline)
        rss0, fds0, start = worker.memory_info().rss, worker.num_fds(), served(stack)
        errors += drive(stack, port, start + REQUESTS, deadline)
        stack.wait_until(lambda: stack.processes("hello")[0]["in_flight"] == 0, timeout=5)
        rss1, fds1, total = worker.memory_info().rss, worker.num_fds(), served(stack)
        log.warning(
            "soak: %d requests after warm-up, RSS %.1f -> %.1f MiB (%+.2f), fds %d -> %d, "
            "%d errors",
            total - start,
            rss0 / MIB,
            rss1 / MIB,
            (rss1 - rss0) / MIB,
            fds0,
            fds1,
            errors,
        )
        assert stack.pids("hello") == [worker.pid]  # the same worker all along
        assert total - start >= REQUESTS
        assert rss1 - rss0 < 5 * MIB
        assert fds1 <= fds0
        assert errors == 0
