"""``[web]`` in a stack file: the supervisor runs the console as a watcher of its own."""

from __future__ import annotations

import json

from tests.component.web import Console
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import fake_watcher, running_stack

TOKEN = "stack-file-console-token-0123456789"


def test_a_web_table_runs_the_console_on_the_stack_it_belongs_to(base):
    port = free_port()
    web = f'[web]\naddress = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n'
    with running_stack(base, fake_watcher(numprocesses=2) + web) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2 and stack.pids("web"))
        console = Console(proc=stack.proc, port=port, log_file=stack.log_file, token=TOKEN)

        def state() -> dict[str, object] | None:
            try:
                status, _, body = console.request("GET", "/api/state")
            except OSError:
                return None
            return json.loads(body) if status == 200 else None

        stack.wait_until(lambda: state() is not None and "w" in json.dumps(state()), timeout=15)
        assert console.request("GET", "/api/state", auth=False)[0] == 401
        assert stack.status("web")["state"] == "active"
        assert stack.ctl("stop", "web").returncode == 0  # the console is a watcher like any
        stack.wait_until(lambda: not stack.pids("web", state="ready"))
        try:
            console.request("GET", "/api/state")
            answered = True
        except OSError:
            answered = False
        assert not answered
