"""Scaling under heavy load with the relay (``m2bridge relay``): no request lost on stop.

Under heavy load (50 keep-alive clients on a 10 ms app, one request outstanding
each, 2 s timeout), but the workers take their requests from the relay (``serve --relay``)
instead of connecting their PULL to Mongrel2. A stopping worker says ``bye`` and serves
everything up to the relay's ``bye-ack``, so ``decr`` and a rolling ``reload`` lose exactly
0 requests. A worker killed with SIGKILL loses what it held (its clients' outstanding
requests), and nothing after: the relay drops it on its first failed send.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psutil

from tests.helpers.load import (
    CLIENTS,
    RUNNING,
    SERVED_AFTER,
    SLEEPY,
    heavy_load,
    report,
    wait_answered,
    wait_ready,
)
from tests.helpers.mongrel2 import HandlerSpec, free_port, make_conf, require_mongrel2
from tests.helpers.stack import RunningStack, running_stack, served_by

log = logging.getLogger(__name__)
#: Runs of each zero-loss scenario per test (several, so a pass is not luck).
RUNS = 2


def relay_stack_text(base: Path, workers: int) -> tuple[str, int]:
    """Mongrel2 + relay (priority 5: after Mongrel2, before the workers) + sleepy workers."""
    require_mongrel2()
    port = free_port()
    handler = HandlerSpec(route="/")
    conf = base / "mongrel2.conf"
    conf.write_text(make_conf(port, [handler]))
    relay = f"ipc://{base / 'relay.ipc'}"
    worker_options = f"--config {conf} --handler / --relay {relay} --graceful-timeout 10"
    text = f"""
[watchers.mongrel2]
type = "mongrel2"
config = "{conf}"
graceful_timeout = 5

[watchers.relay]
cmd = "$(python) -m m2bridge relay --send-spec {handler.send_spec} --bind {relay}"
priority = 5
graceful_timeout = 5

[watchers.hello]
cmd = "$(python) -m m2bridge serve {SLEEPY} {worker_options}"
numprocesses = {workers}
readiness = "stats"
graceful_timeout = 10
"""
    return text, port


@contextlib.contextmanager
def relay_stack(base: Path, workers: int) -> Iterator[tuple[RunningStack, int]]:
    text, port = relay_stack_text(base, workers)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers)
        yield stack, port


def test_decr_with_the_relay_loses_exactly_zero_requests(base):
    with relay_stack(base, workers=4) as (stack, port):
        for run in range(RUNS):
            with heavy_load(port) as load:
                wait_answered(load, RUNNING)
                assert stack.call("decr", name="hello", n=2)["numprocesses"] == 2
                stack.wait_until(lambda: len(stack.processes("hello")) == 2, timeout=10)
                wait_answered(load, SERVED_AFTER)
            # Leaving the load waited for every request outstanding: a lost one timed out.
            log.warning(report(f"relay decr 4->2 (run {run})", load))
            assert load.failed == 0, load.errors[:5]
            assert stack.call("incr", name="hello", n=2)["numprocesses"] == 4
            wait_ready(stack, port, 4)


def test_rolling_reload_with_the_relay_loses_exactly_zero_requests(base):
    with relay_stack(base, workers=3) as (stack, port):
        for run in range(RUNS):
            old = set(stack.pids("hello"))
            with heavy_load(port) as load:
                wait_answered(load, RUNNING)
                assert stack.call("reload", name="hello") == {"watchers": ["hello"]}
                stack.wait_until(partial(all_gone, stack, old), timeout=15)
                new = set(stack.pids("hello"))
                stack.wait_until(partial(served_by, stack, new), timeout=10)
                wait_answered(load, SERVED_AFTER)
            log.warning(report(f"relay reload x3 (run {run})", load))
            assert load.failed == 0, load.errors[:5]


def test_kill_9_of_1_of_4_workers_loses_at_most_half_the_clients_and_serving_goes_on(base):
    with relay_stack(base, workers=4) as (stack, port):
        with heavy_load(port) as load:
            wait_answered(load, RUNNING)
            victim = stack.pids("hello")[0]
            psutil.Process(victim).send_signal(signal.SIGKILL)
            stack.wait_until(lambda: victim not in stack.pids("hello"), timeout=10)
            wait_answered(load, SERVED_AFTER)  # still serving after the kill
        log.warning(report("relay kill -9 of 1 of 4", load))
        # Each client has one request outstanding: the victim held at most its clients' (about
        # a quarter of them, bounded at half).
        assert load.failed <= CLIENTS // 2, load.errors[:5]
        assert all("timed out" in error for error in load.errors)


def all_gone(stack: RunningStack, pids: set[int]) -> bool:
    """Whether none of ``pids`` is among the ready processes of ``hello`` any more."""
    return not pids & set(stack.pids("hello"))
