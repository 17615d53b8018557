"""A worker stuck on the CPU behind the relay, with real Mongrel2: the supervisor's watchdog
kills it and the relay has Mongrel2 close the connections it held, so its client gets an EOF
within seconds (not Mongrel2's two-minute reaper), and the stack serves again."""

from __future__ import annotations

import socket
import time

from tests.component.supervisor.test_hung_worker import SPIN_APP
from tests.helpers.http import get
from tests.helpers.stack import example_stack, running_stack, wait_active

HANG_TIMEOUT = 2


def test_the_client_of_a_hung_worker_gets_an_eof_within_seconds_and_the_stack_serves_again(base):
    (base / "spin_app.py").write_text(SPIN_APP)
    text, port = example_stack(base, "stack.toml")
    text = text.replace("m2bridge.handlers.hello:app", "spin_app:app")
    text = text.replace("numprocesses = 2", f"numprocesses = 2\nhang_timeout = {HANG_TIMEOUT}")
    with running_stack(base, text) as stack:
        wait_active(stack, workers=2)
        client = socket.create_connection(("127.0.0.1", port), timeout=15)
        try:
            client.sendall(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
            sent = time.monotonic()
            assert client.recv(100) == b""  # closed, never answered: the worker took it along
            waited = time.monotonic() - sent
        finally:
            client.close()
        assert waited < HANG_TIMEOUT + 4
        (hello,) = stack.call("stats", name="hello")["watchers"]
        assert hello["restarts"]["hung"] == 1
        assert "missed its heartbeat" in stack.log()
        wait_active(stack, workers=2)
        assert get(port) == (200, b"fine")
