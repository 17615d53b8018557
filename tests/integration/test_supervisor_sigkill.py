"""A supervisor killed with SIGKILL takes its whole stack with it (real Mongrel2, the relay and
the workers get the parent-death signal), and the same stack starts again on the same ports."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

from tests.helpers.http import get
from tests.helpers.stack import example_stack, orphans, running_stack, stack_pids, wait_serving
from tests.helpers.waiting import wait_until


def test_sigkilled_supervisor_leaves_no_child_running_and_the_stack_starts_again(base):
    text, port = example_stack(base, "stack.toml")
    started: list[psutil.Process] = []
    try:
        with running_stack(base, text) as stack:
            wait_serving(stack, port, workers=2)
            children = stack_pids(stack)
            assert len(children) == 4  # mongrel2, relay, 2 workers
            started += [psutil.Process(pid) for pid in stack.descendants()]

            os.kill(stack.proc.pid, signal.SIGKILL)
            assert stack.proc.wait(5) == -signal.SIGKILL
            wait_until(lambda: not orphans(children), timeout=5)
            assert orphans(children) == []

        with running_stack(base, text) as again:
            wait_serving(again, port, workers=2)
            started += [psutil.Process(pid) for pid in again.descendants()]
            assert set(stack_pids(again)).isdisjoint(children)
            assert all(get(port)[0] == 200 for _ in range(10))
    finally:
        for process in started:  # psutil checks the start time: never a recycled pid
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
