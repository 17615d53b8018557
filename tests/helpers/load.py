"""Heavy-load stacks of the reliability tests: Mongrel2 + sleepy (or misbehaving) workers
under ``m2bridge up``, and the load that counts lost requests.

A *lost* request is one whose client got no response within 2 s: losses are counted by
``tests.helpers.http.LoadLoop`` (one thread per client, one request outstanding each, any
exception or non-200 counted). wrk is not used to count losses: a request that never gets an
answer leaves its wrk connection hung without counting a timeout (checked: a worker killed
with 26 requests in flight showed 0 errors in wrk).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.http import LoadLoop, get
from tests.helpers.stack import RunningStack, mongrel2_stack, running_stack, wait_active
from tests.helpers.waiting import wait_until
from tests.helpers.worker import REPO_ROOT

#: A 10 ms I/O-bound app: many requests wait inside each worker (and in its PULL queue).
SLOW_PATH = "/?seconds=0.01"
SLEEPY = "handlers.sleepy:app"
#: Concurrent clients of the heavy load.
CLIENTS = 50
#: Requests answered before a fault (the heavy load is running; ~0.5 s of it) and after it
#: (serving goes on; ~1 s of it).
RUNNING, SERVED_AFTER = 1000, 2000


def heavy_load(port: int, clients: int = CLIENTS, path: str = SLOW_PATH) -> LoadLoop:
    """``clients`` keep-alive clients, each with one request outstanding, 2 s timeout."""
    return LoadLoop(port, threads=clients, timeout=2.0, path=path)


def report(what: str, load: LoadLoop) -> str:
    """One line of numbers for the log (and the README table)."""
    return f"{what}: {load.ok + load.failed} requests, {load.failed} lost ({load.errors[:3]})"


def wait_answered(load: LoadLoop, requests: int, timeout: float = 15.0) -> None:
    """Wait until ``load`` has had ``requests`` more requests answered 200 (from now): the
    load is running (before a fault) or is served again (after one)."""
    start = load.ok
    assert wait_until(lambda: load.ok - start >= requests, timeout), (
        f"only {load.ok - start} of {requests} requests answered in {timeout} s: {load.errors[:3]}"
    )


def wait_ready(
    stack: RunningStack, port: int, workers: int, timeout: float = 20, path: str = SLOW_PATH
) -> None:
    """Every watcher active, ``workers`` app processes ready, and Mongrel2 answering."""
    wait_active(stack, workers, timeout)
    assert get(port, path)[0] == 200


@contextlib.contextmanager
def slow_stack(base: Path, workers: int, extra: str = "") -> Iterator[tuple[RunningStack, int]]:
    """Mongrel2 + ``workers`` sleepy workers (watcher ``hello``), ready to serve."""
    text, port = mongrel2_stack(base, app=SLEEPY, workers=workers, extra=extra)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers)
        yield stack, port


@contextlib.contextmanager
def stack_with_apps(
    base: Path, app: str, workers: int, extra: str = ""
) -> Iterator[tuple[RunningStack, int]]:
    """Like ``slow_stack`` for an app of tests/reliability/apps.py; ready when ``/`` answers."""
    extra += f'[watchers.hello.env]\nPYTHONPATH = "{REPO_ROOT}"\n'
    text, port = mongrel2_stack(base, app=app, workers=workers, extra=extra)
    with running_stack(base, text) as stack:
        wait_ready(stack, port, workers, path="/")
        yield stack, port
