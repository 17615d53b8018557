"""Start and stop a real ``m2bridge serve`` worker subprocess for tests.

The worker runs from the repository root (so ``handlers.*`` and ``tests.integration.apps.*``
import), logs to a file in the test's tmp dir, and publishes its stats file once every channel
is connected, which is the readiness signal waited for here. It is always stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
APPS = "tests.integration.apps"


@dataclass
class WorkerProcess:
    """A running worker: its process, log file and stats file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    stats_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def stats(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the worker published its stats file (every channel connected)."""

        def published() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log()}")
            return self.stats().get("pid") == self.pid

        if not wait_until(published, timeout):
            raise AssertionError(f"worker not ready in {timeout} s:\n{self.log()}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        """Wait for the worker to exit on its own; return its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running after {timeout} s:\n{self.log()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the worker by PID and wait; SIGKILL it if it does not exit."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


def worker_argv(
    app: str,
    send_specs: Sequence[str],
    recv_specs: Sequence[str],
    extra: Sequence[str] = (),
    validate: bool = True,
) -> list[str]:
    """The ``python -m m2bridge serve`` command line of a test worker."""
    argv = [sys.executable, "-m", "m2bridge", "serve", app]
    for send_spec, recv_spec in zip(send_specs, recv_specs, strict=True):
        argv += ["--send-spec", send_spec, "--recv-spec", recv_spec]
    if validate:
        argv.append("--validate")
    return [*argv, *extra]


@contextlib.contextmanager
def run_worker(
    directory: Path,
    app: str,
    send_specs: Sequence[str],
    recv_specs: Sequence[str],
    extra: Sequence[str] = (),
    *,
    validate: bool = True,
    wait: bool = True,
    name: str = "worker",
) -> Iterator[WorkerProcess]:
    """Run one worker serving ``app`` until the block ends (SIGTERM, then SIGKILL)."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"{name}.log"
    stats_path = directory / f"{name}.stats.json"
    stats_path.unlink(missing_ok=True)
    argv = worker_argv(
        app, send_specs, recv_specs, [*extra, "--stats-file", str(stats_path)], validate
    )
    env = {key: value for key, value in os.environ.items() if key != "M2BRIDGE_STATS_FILE"}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    worker = WorkerProcess(proc, log_path, stats_path)
    try:
        if wait:
            worker.wait_ready()
        yield worker
    finally:
        worker.stop()
