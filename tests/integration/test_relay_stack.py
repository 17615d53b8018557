"""examples/stack.toml (the demo): Mongrel2 + relay + two workers serve, and stop in order."""

from __future__ import annotations

import subprocess

from tests.helpers.http import get
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import CTL, DEMO_CONF, EXAMPLES, running_stack, wait_serving


def test_relay_example_stack_serves_and_stops_the_relay_after_the_workers(base):
    port, send, recv = free_port(), free_port(), free_port()
    conf = DEMO_CONF.read_text()
    conf = conf.replace("6767", str(port)).replace("9997", str(send)).replace("9996", str(recv))
    (base / "demo.conf").write_text(conf)
    text = (EXAMPLES / "stack.toml").read_text().replace("[stack]\n", "", 1)
    text = text.replace("../mongrel2_conf/examples/demo.conf", "demo.conf")
    text = text.replace("/tmp/m2bridge-demo-relay.ipc", "relay.ipc")
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
