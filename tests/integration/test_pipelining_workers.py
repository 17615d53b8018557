"""Issue #14, item 2: several workers must not reorder or drop pipelined answers.

Mongrel2's PUSH deals one connection's requests round-robin over the handlers connected to
it, so ``serve --workers 2`` with both workers straight on Mongrel2 answered four pipelined
requests with ``/get``'s answer, then the bytes, then EOF. ``serve --workers N`` now runs its
workers behind ``m2bridge relay`` (connection affinity), and every stack the docs show answers
all four, complete and in order (docs/decisions/0001-multi-worker-topology.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from m2bridge.errors import ControlError
from m2bridge.supervisor.client import ControlClient
from tests.helpers.http import get
from tests.helpers.mongrel2 import HandlerSpec, free_port, run_mongrel2
from tests.helpers.pipelining import APP, EXPECTED, pipelined_exchange
from tests.helpers.stack import (
    EXAMPLES,
    RunningStack,
    example_stack,
    running_stack,
    stop_by_pid,
)
from tests.helpers.waiting import wait_until
from tests.helpers.worker import REPO_ROOT

#: Exchanges per stack: each one must come back whole and in order.
ROUNDS = 3
SUPERVISOR = "serve-tests-integration-apps-pipeline-app"


def assert_pipelined_answers_in_order(port: int) -> None:
    for _ in range(ROUNDS):
        answers, left, closed = pipelined_exchange(port)
        assert answers == EXPECTED
        assert (left, closed) == (b"", True)


def ready_workers(endpoint: str) -> int:
    """Ready processes of the ``serve --workers`` watcher, -1 while its supervisor is not up."""
    try:
        with ControlClient(endpoint, timeout=1) as client:
            stats = client.call("stats", {"name": SUPERVISOR})
    except ControlError:
        return -1
    return sum(p["state"] == "ready" for p in stats["watchers"][0]["processes"])


@pytest.mark.parametrize("endpoints", ["--config/--handler", "--send-spec/--recv-spec"])
def test_serve_workers_2_answers_four_pipelined_requests_whole_and_in_order(base, endpoints):
    handler = HandlerSpec(route="/")
    with run_mongrel2(base / "m2", [handler]) as server:
        if endpoints == "--config/--handler":
            options = ["--config", str(server.chroot / "mongrel2.conf"), "--handler", "/"]
        else:
            options = ["--send-spec", handler.send_spec, "--recv-spec", handler.recv_spec]
        argv = [sys.executable, "-m", "m2bridge", "serve", APP, "--workers", "2", *options]
        env = {**os.environ, "XDG_RUNTIME_DIR": str(base), "PYTHONPATH": str(REPO_ROOT)}
        log_file = base / "serve.log"
        with open(log_file, "wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            endpoint = f"ipc://{base}/m2bridge/{SUPERVISOR}/m2bridge.ctl"
            assert wait_until(lambda: ready_workers(endpoint) == 2, 20, interval=0.1), (
                log_file.read_text()
            )
            assert wait_until(lambda: get(server.port, "/get") == (200, b"get\n"), 10)
            assert_pipelined_answers_in_order(server.port)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, log_file.read_text()
        finally:
            stop_by_pid(proc.pid, proc)


def fd_example_stack(base: Path) -> tuple[str, int]:
    """``examples/fd_stack.toml`` on a free port (stack text, HTTP port)."""
    port = free_port()
    text = (EXAMPLES / "fd_stack.toml").read_text().replace("[stack]\n", "", 1)
    return text.replace("port = 8080", f"port = {port}"), port


def with_pipeline_app(text: str, watcher: str) -> str:
    """``text`` with the hello app replaced by the pipeline app, importable by ``watcher``."""
    text = text.replace("m2bridge.handlers.hello:app", APP)
    return text + f'\n[watchers.{watcher}.env]\nPYTHONPATH = "{REPO_ROOT}"\n'


def wait_serving_pipeline(stack: RunningStack, port: int, watcher: str, workers: int) -> None:
    def ready() -> bool:
        states = [w["state"] for w in stack.call("status")["watchers"]]
        return states == ["active"] * len(states) and len(stack.pids(watcher)) == workers

    stack.wait_until(ready, timeout=20)
    stack.wait_until(lambda: get(port, "/get") == (200, b"get\n"), timeout=10)


@pytest.mark.parametrize(
    ("example", "watcher"), [("stack.toml", "hello"), ("fd_stack.toml", "web")]
)
def test_every_example_stack_answers_four_pipelined_requests_whole_and_in_order(
    base, example, watcher
):
    if example == "fd_stack.toml":
        text, port = fd_example_stack(base)
    else:
        text, port = example_stack(base, example)
    with running_stack(base, with_pipeline_app(text, watcher)) as stack:
        wait_serving_pipeline(stack, port, watcher, workers=2)
        assert_pipelined_answers_in_order(port)
