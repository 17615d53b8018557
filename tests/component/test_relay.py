"""The relay (``m2bridge relay``) between FakeMongrel2 and real workers started with ``--relay``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2bridge.testing import FakeMongrel2
from tests.integration.worker_fixture import APPS, REPO_ROOT, WorkerProcess

MUX = f"{APPS}.mux:app"


@pytest.fixture
def fake(tmp_path):
    (tmp_path / "m2").mkdir()
    with FakeMongrel2(tmp_path / "m2") as fake:
        yield fake


@contextlib.contextmanager
def running(argv: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; stopped by PID (SIGTERM, then SIGKILL)."""
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


@contextlib.contextmanager
def relay(tmp_path: Path, fake: FakeMongrel2) -> Iterator[str]:
    """A relay process reading ``fake``; yields the endpoint workers connect to."""
    bind = f"ipc://{tmp_path / 'relay.ipc'}"
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", fake.send_spec]
    with running([*argv, "--bind", bind], tmp_path / "relay.log"):
        yield bind


@contextlib.contextmanager
def worker(tmp_path: Path, fake: FakeMongrel2, bind: str, name: str) -> Iterator[WorkerProcess]:
    """One worker of MUX taking its requests from the relay at ``bind``."""
    stats = tmp_path / f"{name}.stats.json"
    argv = [sys.executable, "-m", "m2bridge", "serve", MUX, "--relay", bind,
            "--recv-spec", fake.recv_spec, "--stats-file", str(stats)]  # fmt: skip
    with running(argv, tmp_path / f"{name}.log") as proc:
        process = WorkerProcess(proc, tmp_path / f"{name}.log", stats)
        process.wait_ready()
        yield process


def test_requests_are_served_through_the_relay(tmp_path, fake):
    with relay(tmp_path, fake) as bind, worker(tmp_path, fake, bind, "w1"):
        ids = [fake.request("/hello/") for _ in range(50)]
        assert all(fake.response(conn_id).status == 200 for conn_id in ids)
