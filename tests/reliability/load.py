"""Stack and load helpers of the reliability tests (on top of tests/integration/test_stack_up).

A *lost* request is one whose client got no response: a socket error or a timeout (2 s) in
wrk, or an exception in the Python client. Non-2xx answers are counted apart: they are not
lost, but no reliability test expects any.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.component.test_supervisor import RunningStack, running_stack
from tests.integration.test_stack_up import WrkResult, finish_wrk, get, mongrel2_stack

#: A 10 ms I/O-bound app: many requests wait inside each worker (and in its PULL queue).
SLOW_PATH = "/?seconds=0.01"
SLEEPY = "handlers.sleepy:app"


def start_load(
    port: int, seconds: int, connections: int = 50, path: str = SLOW_PATH
) -> subprocess.Popen[str]:
    """wrk with ``connections`` keep-alive clients for ``seconds`` s, each request timing out
    after 2 s (a timeout is a lost request)."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s"]
    url = f"http://127.0.0.1:{port}{path}"
    return subprocess.Popen([*argv, url], stdout=subprocess.PIPE, text=True)


def lost(result: WrkResult) -> int:
    """Requests whose client got no answer (socket errors and timeouts)."""
    return sum(result.socket_errors.values())


def finish_load(proc: subprocess.Popen[str]) -> WrkResult:
    """Wait for wrk and parse its counts."""
    return finish_wrk(proc)


def wait_ready(stack: RunningStack, port: int, workers: int, timeout: float = 20) -> None:
    """Every watcher active, ``workers`` app processes ready, and Mongrel2 answering."""

    def ready() -> bool:
        states = [w["state"] for w in stack.call("status")["watchers"]]
        return states == ["active"] * len(states) and len(stack.pids("hello")) == workers

    stack.wait_until(ready, timeout=timeout)
    assert get(port, SLOW_PATH)[0] == 200


@contextlib.contextmanager
def slow_stack(base: Path, workers: int, extra: str = "") -> Iterator[tuple[RunningStack, int]]:
    """Mongrel2 + ``workers`` sleepy workers (watcher ``hello``), ready to serve."""
    text, port = mongrel2_stack(base, app=SLEEPY, workers=workers, extra=extra)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers)
        yield stack, port
