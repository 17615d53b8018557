"""The supervisor with real child processes (no Mongrel2): `m2bridge up` + the control socket.

Children are small Python programs (a fake worker that publishes a stats file like the real
one) so each behaviour (scaling, respawn, flapping, rolling reload, quit) is checked on real
processes. Helpers here are reused by the other supervisor test modules.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from m2bridge.supervisor.client import ControlClient

UP = [sys.executable, "-m", "m2bridge", "up"]
CTL = [sys.executable, "-m", "m2bridge", "ctl"]

#: A stand-in worker: publishes its stats file like m2bridge's worker, drains on SIGTERM.
FAKE_WORKER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    env = os.environ
    stopping = []
    if env.get("IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    started = time.time()
    time.sleep(float(env.get("READY_AFTER", "0")))
    if env.get("CRASH") == "1":
        sys.exit("crashed at import")
    path, served = env.get("M2BRIDGE_STATS_FILE"), 0
    def publish():
        if path:
            data = {"pid": os.getpid(), "served": served, "in_flight": 0,
                    "started_at": started, "errors": 0}
            with open(path + ".tmp", "w") as out:
                json.dump(data, out)
            os.replace(path + ".tmp", path)
    print("worker", env.get("M2BRIDGE_WID"), "up", sys.argv[1:], flush=True)
    publish()
    while not stopping:
        time.sleep(0.05)
        served += int(env.get("SERVE_PER_TICK", "0"))
        publish()
    time.sleep(float(env.get("DRAIN", "0")))
    print("worker drained", flush=True)
    """
)


@pytest.fixture
def base() -> Iterator[Path]:
    """A short private directory (ipc:// paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="m2b-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class RunningStack:
    """A supervisor started with `m2bridge up`, and ways to talk to it."""

    proc: subprocess.Popen[bytes]
    stack_file: Path
    rundir: Path
    log_file: Path

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.rundir}/m2bridge.ctl"

    def call(self, command: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
        with ControlClient(self.endpoint, timeout=timeout) as client:
            return client.call(command, args)

    def ctl(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CTL, "-s", str(self.stack_file), *argv],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def processes(self, name: str) -> list[dict[str, Any]]:
        return self.call("stats", name=name)["watchers"][0]["processes"]

    def pids(self, name: str, state: str = "ready") -> list[int]:
        return [p["pid"] for p in self.processes(name) if p["state"] == state]

    def status(self, name: str) -> dict[str, Any]:
        return self.call("status", name=name)["watchers"][0]

    def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> float:
        """Poll ``predicate``; returns the seconds it took. Fails with the log on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            if self.proc.poll() is not None:
                pytest.fail(f"supervisor exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        pytest.fail(f"condition not met in {timeout} s; log:\n{self.log()}")

    def descendants(self) -> list[int]:
        with contextlib.suppress(psutil.Error):
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        return []


def write_stack(base: Path, text: str) -> Path:
    stack_file = base / "stack.toml"
    stack_file.write_text(f'[stack]\nrundir = "{base / "run"}"\n' + textwrap.dedent(text))
    return stack_file


@contextlib.contextmanager
def running_stack(base: Path, text: str, wait: bool = True) -> Iterator[RunningStack]:
    """Run `m2bridge up` on a stack; always stop it (and every child) by PID afterwards."""
    stack_file = write_stack(base, text)
    log_file = base / "up.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [*UP, str(stack_file)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack = RunningStack(proc, stack_file, base / "run", log_file)
    children: set[int] = set()
    try:
        if wait:
            stack.wait_until(lambda: _answers(stack))
        yield stack
        children.update(stack.descendants())
    finally:
        children.update(stack.descendants())
        stop_by_pid(proc.pid, proc)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _answers(stack: RunningStack) -> bool:
    try:
        stack.call("status", timeout=0.5)
    except Exception:
        return False
    return True


def stop_by_pid(pid: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            proc.wait(5)


def fake_watcher(name: str = "w", numprocesses: int = 2, **extra: object) -> str:
    """A watcher running FAKE_WORKER, ready by its stats file."""
    env = extra.pop("env", {})
    settings: dict[str, object] = {
        "numprocesses": numprocesses,
        "readiness": "stats",
        "graceful_timeout": 5,
        **extra,
    }
    lines = [
        f"[watchers.{name}]",
        'cmd = ["$(python)", "-c", ' + _toml_str(FAKE_WORKER) + ', "slot=$(wid)"]',
        *(f"{key} = {_toml_value(value)}" for key, value in settings.items()),
    ]
    if isinstance(env, dict) and env:
        pairs = ", ".join(f"{k} = {_toml_str(str(v))}" for k, v in env.items())
        lines.append(f"env = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_str(value)
    return str(value)


def count_started(stack: RunningStack, name: str) -> int:
    """How many processes of watcher ``name`` the supervisor has started."""
    return sum(
        1 for line in stack.log().splitlines() if f" {name}." in line and " started (pid " in line
    )


# -- scaling --


def test_up_starts_numprocesses_and_relays_their_output(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        assert sorted(p["wid"] for p in stack.processes("w")) == [1, 2]
        stack.wait_until(lambda: "w.2 | worker 2 up ['slot=2']" in stack.log())
        assert "w.1 | worker 1 up ['slot=1']" in stack.log()


def test_incr_and_decr_show_in_stats_within_a_second(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        assert stack.call("incr", name="w", n=2)["numprocesses"] == 3
        assert stack.wait_until(lambda: len(stack.processes("w")) == 3) < 1.0
        assert stack.call("decr", name="w")["numprocesses"] == 2
        took = stack.wait_until(lambda: len(stack.pids("w", "ready")) == 2)
        assert took < 1.0
        stack.wait_until(lambda: len(stack.processes("w")) == 2)
        assert sorted(p["wid"] for p in stack.processes("w")) == [1, 2]


def test_decr_drains_the_highest_slot_before_it_exits(base):
    watcher = fake_watcher(numprocesses=2, env={"DRAIN": "0.5"})
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("decr", name="w")
        stack.wait_until(lambda: len(stack.processes("w")) == 1)
        assert stack.processes("w")[0]["wid"] == 1
        assert "w.2 | worker drained" in stack.log()


def test_signals_ttin_ttou_scale_like_incr_decr(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        os.kill(stack.proc.pid, signal.SIGTTIN)
        stack.wait_until(lambda: stack.status("w")["numprocesses"] == 2)
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        os.kill(stack.proc.pid, signal.SIGTTOU)
        stack.wait_until(lambda: len(stack.processes("w")) == 1)


# -- respawn and flapping --


def test_killed_process_is_respawned_in_its_slot(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        victim = next(p for p in stack.processes("w") if p["wid"] == 2)
        os.kill(victim["pid"], signal.SIGKILL)
        stack.wait_until(
            lambda: any(p["wid"] == 2 and p["pid"] != victim["pid"] for p in stack.processes("w"))
        )
        assert stack.status("w")["state"] in ("starting", "active")
        assert "killed by SIGKILL" in stack.log()


def test_crash_at_start_backs_off_then_gives_up_without_a_storm(base):
    flapping = "[watchers.w.flapping]\nattempts = 2\nwindow = 5\nretry_in = 0.3\nmax_retries = 2\n"
    watcher = fake_watcher(numprocesses=1, env={"CRASH": "1"}) + flapping
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "failed", timeout=20)
        status = stack.status("w")
        assert "flapping: gave up after 2 back-offs" in status["reason"]
        assert "exited with status 1" in status["reason"]
        assert count_started(stack, "w") == 6  # 2 attempts x (1 + max_retries 2)
        assert "is flapping" in stack.log()
        time.sleep(1.0)
        assert count_started(stack, "w") == 6
        assert "w.1 | crashed at import" in stack.log()


def test_backoff_state_is_visible_and_start_clears_failure(base):
    flapping = "[watchers.w.flapping]\nattempts = 1\nretry_in = 30\n"
    watcher = fake_watcher(numprocesses=1, env={"CRASH": "1"}) + flapping
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "backoff")
        assert stack.status("w")["retry_in"] > 20
        stack.call("start", name="w")
        stack.wait_until(lambda: count_started(stack, "w") >= 2)


def test_command_that_cannot_start_fails_once_with_a_reason(base):
    text = '[watchers.w]\ncmd = "/nonexistent/m2b-binary --x"\nnumprocesses = 3\n'
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "failed")
        status = stack.status("w")
        assert "cannot start" in status["reason"]
        assert "No such file or directory" in status["reason"]
        time.sleep(1.0)
        assert stack.log().count("cannot start") == 1
        assert status["running"] == 0


def test_operator_stop_and_term_signal_are_not_flapping(base):
    flapping = "[watchers.w.flapping]\nattempts = 1\nretry_in = 30\n"
    with running_stack(base, fake_watcher(numprocesses=2) + flapping) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("stop", name="w")
        stack.wait_until(lambda: stack.status("w")["state"] == "stopped")
        stack.call("start", name="w")
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("signal", name="w", signal="TERM")
        stack.wait_until(lambda: count_started(stack, "w") == 6)
        stack.wait_until(lambda: stack.status("w")["state"] == "active")
        assert "is flapping" not in stack.log()


def test_respawn_false_lets_an_exited_process_go(base):
    text = '[watchers.w]\ncmd = ["$(python)", "-c", "pass"]\nnumprocesses = 2\nrespawn = false\n'
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: stack.status("w")["numprocesses"] == 0)
        assert count_started(stack, "w") == 2


def test_process_ignoring_the_stop_signal_is_killed_after_graceful_timeout(base):
    watcher = fake_watcher(numprocesses=1, env={"IGNORE_TERM": "1"}, graceful_timeout=0.5)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        stack.call("decr", name="w")
        took = stack.wait_until(lambda: not stack.processes("w"))
        assert 0.4 < took < 3
        assert "still running 0.5 s after stop: killing it" in stack.log()


# -- reload --


def test_reload_is_rolling_new_process_ready_before_an_old_one_stops(base):
    watcher = fake_watcher(numprocesses=2, env={"READY_AFTER": "0.4", "DRAIN": "0.2"})
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        old = set(stack.pids("w"))
        assert stack.call("reload", name="w") == {"watchers": ["w"]}
        seen_ready: list[int] = []

        def done() -> bool:
            ready = stack.pids("w")
            seen_ready.append(len(ready))
            return not old & {p["pid"] for p in stack.processes("w")}

        stack.wait_until(done, timeout=15)
        assert min(seen_ready) >= 2  # never fewer than numprocesses serving
        stack.wait_until(lambda: stack.status("w")["state"] == "active")
        assert len(stack.pids("w")) == 2


def test_sighup_reloads(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        (old,) = stack.pids("w")
        os.kill(stack.proc.pid, signal.SIGHUP)
        stack.wait_until(lambda: stack.pids("w") not in ([], [old]))
        stack.wait_until(lambda: stack.status("w")["generation"] == 1)


def test_restart_stops_then_starts(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        old = set(stack.pids("w"))
        stack.call("restart", name="w")
        stack.wait_until(lambda: len(set(stack.pids("w")) - old) == 2)


def test_max_requests_replaces_a_worker_without_dropping_below_numprocesses(base):
    watcher = fake_watcher(numprocesses=1, env={"SERVE_PER_TICK": "5"}, max_requests=40)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        (first,) = stack.pids("w")
        stack.wait_until(lambda: first not in {p["pid"] for p in stack.processes("w")})
        assert "served 40 requests: replacing it" in stack.log()
        assert stack.pids("w")


# -- quit --


def _orphans(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def test_quit_drains_and_leaves_no_orphan(base):
    watcher = fake_watcher(numprocesses=2, env={"DRAIN": "0.3"})
    shell = '[watchers.sh]\ncmd = ["sh", "-c", "sleep 300 & sleep 300; wait"]\n'
    with running_stack(base, watcher + shell) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2 and stack.pids("sh"))
        stack.wait_until(lambda: len(stack.descendants()) >= 5)
        everyone = stack.descendants()
        assert stack.call("quit") == {"quitting": True}
        assert stack.proc.wait(10) == 0
        assert stack.log().count("worker drained") == 2
        assert _orphans(everyone) == []


def test_sigterm_is_a_graceful_quit(base):
    with running_stack(base, fake_watcher(numprocesses=1, env={"DRAIN": "0.2"})) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        children = stack.descendants()
        os.kill(stack.proc.pid, signal.SIGTERM)
        assert stack.proc.wait(10) == 0
        assert "worker drained" in stack.log()
        assert _orphans(children) == []
        assert not (stack.rundir / "m2bridge.ctl").exists()


def test_second_sigint_kills_at_once(base):
    watcher = fake_watcher(numprocesses=1, env={"IGNORE_TERM": "1"}, graceful_timeout=60)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        children = stack.descendants()
        os.kill(stack.proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.kill(stack.proc.pid, signal.SIGINT)
        assert stack.proc.wait(10) == 0
        assert _orphans(children) == []


def test_quit_stops_lower_priority_first(base):
    front = fake_watcher("front", numprocesses=1, priority=10)
    back = fake_watcher("back", numprocesses=1, env={"DRAIN": "0.5"})
    with running_stack(base, front + back) as stack:
        stack.wait_until(lambda: stack.pids("front") and stack.pids("back"))
        stack.call("quit")
        assert stack.proc.wait(10) == 0
        log = stack.log()
        assert log.index("back.1 | worker drained") < log.index("stopping front")


# -- the supervisor itself --


def test_idle_supervisor_uses_under_two_percent_cpu(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        proc = psutil.Process(stack.proc.pid)
        proc.cpu_percent(None)
        time.sleep(5)
        assert proc.cpu_percent(None) < 2.0


def test_second_supervisor_on_the_same_rundir_is_refused(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        result = subprocess.run(
            [*UP, str(stack.stack_file)], capture_output=True, text=True, timeout=20, check=False
        )
        assert result.returncode == 1
        assert "another supervisor is running" in result.stderr
        assert stack.call("list") == {"watchers": ["w"]}


def test_scaling_signals_during_quit_are_ignored_not_fatal(base):
    with running_stack(base, fake_watcher(numprocesses=1, env={"DRAIN": "1"})) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        os.kill(stack.proc.pid, signal.SIGTERM)
        stack.wait_until(lambda: "quitting" in stack.log())
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            os.kill(stack.proc.pid, signum)
        assert stack.proc.wait(10) == 0
        assert "SIGTTIN ignored: the supervisor is quitting" in stack.log()
        assert "worker drained" in stack.log()


def test_stats_files_of_exited_processes_are_removed(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stats_dir = stack.rundir / "stats"
        assert sorted(p.name for p in stats_dir.glob("*.json")) == ["w.1.json", "w.2.json"]
        stack.call("decr", name="w")
        stack.wait_until(lambda: len(stack.processes("w")) == 1)
        assert sorted(p.name for p in stats_dir.glob("*.json")) == ["w.1.json"]
