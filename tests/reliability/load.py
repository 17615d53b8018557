"""Stack and load helpers of the reliability tests (on top of tests/integration/test_stack_up).

A *lost* request is one whose client got no response within 2 s: losses are counted by
``tests.integration.test_stack_up.LoadLoop`` (one thread per client, one request outstanding
each, any exception or non-200 counted). wrk is not used to count losses: a request that never
gets an answer leaves its wrk connection hung without counting a timeout (checked: a worker
killed with 26 requests in flight showed 0 errors in wrk).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.component.supervisor.test_supervisor import RunningStack, running_stack
from tests.integration.test_stack_up import LoadLoop, get, mongrel2_stack

#: A 10 ms I/O-bound app: many requests wait inside each worker (and in its PULL queue).
SLOW_PATH = "/?seconds=0.01"
SLEEPY = "handlers.sleepy:app"
#: Concurrent clients of the heavy load.
CLIENTS = 50


def heavy_load(port: int, clients: int = CLIENTS, path: str = SLOW_PATH) -> LoadLoop:
    """``clients`` keep-alive clients, each with one request outstanding, 2 s timeout."""
    return LoadLoop(port, threads=clients, timeout=2.0, path=path)


def report(what: str, load: LoadLoop) -> str:
    """One line of numbers for the log (and the README table)."""
    return f"{what}: {load.ok + load.failed} requests, {load.failed} lost ({load.errors[:3]})"


def wait_ready(
    stack: RunningStack, port: int, workers: int, timeout: float = 20, path: str = SLOW_PATH
) -> None:
    """Every watcher active, ``workers`` app processes ready, and Mongrel2 answering."""

    def ready() -> bool:
        states = [w["state"] for w in stack.call("status")["watchers"]]
        return states == ["active"] * len(states) and len(stack.pids("hello")) == workers

    stack.wait_until(ready, timeout=timeout)
    assert get(port, path)[0] == 200


@contextlib.contextmanager
def slow_stack(base: Path, workers: int, extra: str = "") -> Iterator[tuple[RunningStack, int]]:
    """Mongrel2 + ``workers`` sleepy workers (watcher ``hello``), ready to serve."""
    text, port = mongrel2_stack(base, app=SLEEPY, workers=workers, extra=extra)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers)
        yield stack, port


#: Lets workers import ``tests.reliability.apps``.
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def stack_with_apps(
    base: Path, app: str, workers: int, extra: str = ""
) -> Iterator[tuple[RunningStack, int]]:
    """Like ``slow_stack`` for an app of tests/reliability/apps.py; ready when ``/`` answers."""
    extra += f'[watchers.hello.env]\nPYTHONPATH = "{REPO}"\n'
    text, port = mongrel2_stack(base, app=app, workers=workers, extra=extra)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers, path="/")
        yield stack, port
