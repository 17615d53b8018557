"""``ctl status`` exits 0 only when every watcher it reports runs as asked; 4 otherwise, naming
the watchers that do not (with the real Mongrel2)."""

from __future__ import annotations

from tests.helpers.mongrel2 import port_held
from tests.helpers.stack import demo, mongrel2_stack, running_stack, wait_serving

NOT_AS_ASKED = 4


def test_ctl_status_exits_4_while_mongrel2_is_stopped_and_0_once_started_again(base):
    with demo(base, workers=1) as (stack, port):
        wait_serving(stack, port, workers=1)
        up = stack.ctl("status")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "not running as asked" not in up.stdout

        assert stack.ctl("--wait", "10", "stop", "mongrel2").returncode == 0
        down = stack.ctl("status")
        assert down.returncode == NOT_AS_ASKED, down.stdout + down.stderr
        assert "not running as asked: mongrel2 (stopped)" in down.stdout
        assert stack.ctl("status", "hello").returncode == 0  # only the watcher asked about
        assert stack.ctl("--json", "status").returncode == NOT_AS_ASKED

        assert stack.ctl("--wait", "15", "start", "mongrel2").returncode == 0
        again = stack.ctl("status")
        assert again.returncode == 0, again.stdout + again.stderr


def test_ctl_status_exits_4_while_mongrel2_is_in_backoff(base):
    text, port = mongrel2_stack(base, workers=1)
    with port_held(port), running_stack(base, text) as stack:
        stack.wait_until(lambda: stack.status("mongrel2")["state"] in ("backoff", "failed"))
        result = stack.ctl("status", "mongrel2")
    assert result.returncode == NOT_AS_ASKED, result.stdout + result.stderr
    assert "not running as asked: mongrel2 (" in result.stdout
