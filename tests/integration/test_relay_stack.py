"""examples/stack.toml (the demo): Mongrel2 + relay + two workers serve, and stop in order."""

from __future__ import annotations

import subprocess

from tests.helpers.http import get
from tests.helpers.stack import CTL, example_stack, running_stack, wait_serving


def test_relay_example_stack_serves_and_stops_the_relay_after_the_workers(base):
    text, port = example_stack(base, "stack.toml")
    with running_stack(base, text) as stack:
        wait_serving(stack, port, workers=2)
        names = [w["name"] for w in stack.call("status")["watchers"]]
        assert names == ["mongrel2", "relay", "hello"]
        assert all(get(port)[0] == 200 for _ in range(20))
        quit_ = subprocess.run(
            [*CTL, "-s", str(stack.stack_file), "quit"], capture_output=True, text=True, timeout=20
        )
        assert quit_.returncode == 0
        assert stack.proc.wait(20) == 0
        log = stack.log()
        assert (
            log.index("stopping hello")
            < log.index("stopping relay")
            < log.index("stopping mongrel2")
        )
