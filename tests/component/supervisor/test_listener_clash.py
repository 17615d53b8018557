"""``m2bridge up`` refuses a stack whose two Mongrel2 watchers would listen on one address
(legal in one config: Mongrel2 runs one server per process), before starting anything."""

from __future__ import annotations

import subprocess

from tests.helpers.stack import UP
from tests.unit.cli.test_up_check import two_servers_on_one_port


def test_up_refuses_two_mongrel2_watchers_on_one_address_and_starts_nothing(tmp_path):
    stack = two_servers_on_one_port(tmp_path)
    done = subprocess.run(
        [*UP, str(stack)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert (
        "watchers.back: its server would listen on 0.0.0.0:6767, as watchers.front's does"
        in done.stderr
    )
    assert "started (pid" not in done.stderr + done.stdout
