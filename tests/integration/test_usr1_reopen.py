"""SIGUSR1 reopens log files across a stack with the real Mongrel2 (as gunicorn's USR1): the
supervisor reopens its ``--log-file`` and forwards the signal; workers reopen ``--access-log``;
Mongrel2 gets HUP (its own log rotation; USR1 would kill it). Nobody restarts, and a signal the
operator sent never counts as a crash toward the flapping back-off."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.helpers.http import get
from tests.helpers.stack import (
    RunningStack,
    demo,
    example_stack,
    mongrel2_stack,
    running_stack,
    stack_pids,
    wait_active,
    wait_serving,
)


def access_lines(path: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return [line for line in path.read_text().splitlines() if '"GET /usr1-' in line]
    return []


@contextlib.contextmanager
def killed_afterwards(stack: RunningStack, processes: int) -> Iterator[None]:
    """Once ``processes`` children run, SIGKILL them by PID at the end (also after the
    supervisor itself died of the signal, when ``running_stack`` can no longer find them)."""
    seen: dict[int, psutil.Process] = {}

    def remember() -> bool:
        for pid in stack.descendants():
            with contextlib.suppress(psutil.NoSuchProcess):
                seen.setdefault(pid, psutil.Process(pid))
        return len(seen) >= processes

    try:
        stack.wait_until(remember)  # Mongrel2 (+ relay) + workers have started
        yield
    finally:
        remember()
        for process in seen.values():  # psutil checks the start time: never a recycled pid
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def mongrel2_logs(stack: RunningStack) -> Path:
    """Mongrel2's ``logs/`` (its chroot is the watcher's working dir, ``RUNDIR/mongrel2``)."""
    return stack.rundir / "mongrel2" / "logs"


def text_of(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(errors="replace")
    return ""


def test_usr1_reopens_the_workers_access_log_and_restarts_nothing(base):
    access_log = base / "access.log"
    text, port = example_stack(base, "stack.toml")  # Mongrel2, the relay, 2 workers
    app = "handlers.hello:app"
    assert app in text
    text = text.replace(app, f"{app} --access-log {access_log}")
    with running_stack(base, text) as stack, killed_afterwards(stack, 4):
        wait_serving(stack, port, workers=2)
        assert get(port, "/usr1-before")[0] == 200
        stack.wait_until(lambda: access_lines(access_log))
        pids = sorted(stack_pids(stack))
        access_log.rename(base / "access.log.1")
        m2_access_log = mongrel2_logs(stack) / "access.log"
        m2_access_log.rename(m2_access_log.with_name("access.log.1"))

        os.kill(stack.proc.pid, signal.SIGUSR1)
        stack.wait_until(lambda: "reopened log files" in stack.log())

        def logged_at_the_original_path() -> bool:
            assert get(port, "/usr1-after")[0] == 200
            return bool(access_lines(access_log))

        stack.wait_until(logged_at_the_original_path)
        assert all("/usr1-after" in line for line in access_lines(access_log))
        assert len(access_lines(base / "access.log.1")) >= 1
        assert sorted(stack_pids(stack)) == pids
        for status in stack.call("status")["watchers"]:
            assert (status["state"], status["reason"]) == ("active", ""), status
        # Mongrel2 got HUP (USR1 kills it): it rotated its logs and still runs (same pid)
        assert "Rotating logs" in text_of(mongrel2_logs(stack) / "error.log")
        assert "/usr1-after" in text_of(m2_access_log)
        assert "/usr1-after" not in text_of(m2_access_log.with_name("access.log.1"))


def test_operator_signal_that_kills_workers_does_not_trip_the_flapping_back_off(base):
    with demo(base, workers=2) as (stack, port):
        wait_serving(stack, port, workers=2)
        for _ in range(3):  # 6 exits in a few seconds: 3 within 5 s would start a back-off
            pids = set(stack.pids("hello"))
            assert "sent USR2 to 2 processes" in stack.ctl("signal", "hello", "USR2").stdout
            stack.wait_until(lambda p=pids: not p & set(stack_pids(stack)))  # type: ignore[misc]
            wait_active(stack, workers=2)
            status = stack.status("hello")
            assert (status["state"], status["reason"], status["retry_in"]) == ("active", "", 0)
        assert get(port) == (200, b"Hello, world!\n")


def test_usr1_reopens_the_supervisors_log_file_at_its_path(base):
    text, port = mongrel2_stack(base, workers=1)
    log_file = base / "up.log"
    with running_stack(base, text, log_file=log_file) as stack, killed_afterwards(stack, 2):
        wait_serving(stack, port, workers=1)
        assert "hello.1 started" in log_file.read_text()
        log_file.rename(base / "up.log.1")

        os.kill(stack.proc.pid, signal.SIGUSR1)
        stack.wait_until(lambda: log_file.exists() and "reopened log files" in stack.log())
        stack.ctl("incr", "hello")
        stack.wait_until(lambda: "hello.2 started" in stack.log())
        assert "hello.2 started" not in (base / "up.log.1").read_text()
        assert "hello.1 started" not in stack.log()
        wait_serving(stack, port, workers=2)
