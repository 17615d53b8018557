"""A ``mongrel2`` watcher whose Mongrel2 cannot start: Mongrel2's own error line reaches the
supervisor log and ``ctl status`` (port clash: printed before Mongrel2 opens its error log)."""

from __future__ import annotations

from tests.helpers.mongrel2 import port_held
from tests.helpers.stack import mongrel2_stack, running_stack


def test_port_clash_reports_mongrels_own_error_in_log_and_status(base):
    text, port = mongrel2_stack(base, workers=1)
    with port_held(port), running_stack(base, text) as stack:
        stack.wait_until(lambda: "Can't announce" in stack.status("mongrel2")["reason"])
        status = stack.ctl("status")
        log = stack.log()
    expected = f"mongrel2 exited with status 1: Can't announce on TCP port {port}"
    assert expected in status.stdout
    assert expected in log
    assert "no error logged" not in status.stdout + log
    # Mongrel2's own lines are relayed as they are
    relayed = [line for line in log.splitlines() if line.startswith("mongrel2.1 | ")]
    assert any(f"Can't announce on TCP port {port}" in line for line in relayed)
