"""``m2bridge serve`` as a command: its dispatch to the supervisor and to the fd-path worker."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile

import pytest

from m2bridge.testing import FakeMongrel2
from tests.helpers.mongrel2 import free_port
from tests.helpers.waiting import wait_until
from tests.helpers.worker import REPO_ROOT


def start(argv, log_path, runtime_dir=None):
    env = {k: v for k, v in os.environ.items() if k != "M2BRIDGE_STATS_FILE"}
    if runtime_dir is not None:  # the supervisor's run dir, never shared with other test runs
        env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "m2bridge", "serve", *argv],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def stop(proc, timeout=15):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def wait_for_text(path, pattern, count=1, timeout=15):
    found = wait_until(lambda: len(re.findall(pattern, path.read_text())) >= count, timeout)
    assert found, path.read_text()


@pytest.fixture
def runtime_dir():
    """A short directory: the control socket path must fit in 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="m2b-", dir="/tmp") as path:
        yield path


def test_workers_n_runs_n_supervised_workers_that_share_the_load(tmp_path, runtime_dir):
    log_path = tmp_path / "serve.log"
    with FakeMongrel2(tmp_path) as fake:
        proc = start(["handlers.hello:app", "--workers", "2", "--send-spec", fake.send_spec,
                      "--recv-spec", fake.recv_spec], log_path, runtime_dir)  # fmt: skip
        try:
            # both workers, not the relay that --workers N runs in front of them
            wait_for_text(log_path, r"serve-\S+ \(pid \d+\) is ready", count=2)
            for _ in range(20):
                assert fake.response(fake.request("/"), timeout=10).status == 200
        finally:
            assert stop(proc) == 0, log_path.read_text()
    served = [
        int(n) for n in re.findall(r"worker exiting after (\d+) request", log_path.read_text())
    ]
    assert len(served) == 2
    assert sum(served) == 20
    assert min(served) > 0  # the relay deals new connections to both


def test_bind_serves_http_through_the_fd_path_worker(tmp_path):
    port = free_port()
    proc = start(["handlers.hello:app", "--bind", f"127.0.0.1:{port}"], tmp_path / "serve.log")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def sent():
            try:
                conn.request("GET", "/")
            except OSError:
                conn.close()
                return False
            return True

        assert wait_until(sent, timeout=15), (tmp_path / "serve.log").read_text()
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"Hello, world!\n")
        conn.close()
    finally:
        assert stop(proc) == 0


@pytest.mark.parametrize("argv", [["--help"], ["handlers.hello:app", "--help"]])
def test_help_exits_0(argv):
    result = subprocess.run(
        [sys.executable, "-m", "m2bridge", "serve", *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert "--send-spec" in result.stdout
