"""A real ``m2bridge up`` supervisor for tests, and the stacks run under it.

``running_stack`` starts the supervisor on a stack file written into a short private
directory (the ``base`` fixture of tests/conftest.py: ipc:// paths must stay under 107 bytes)
and always stops it, and every child it started, by PID. ``fake_watcher`` is a watcher of
small Python children that publish a stats file like the real worker; ``mongrel2_stack`` and
``demo`` run the real Mongrel2 with m2bridge workers on free ports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from m2bridge.supervisor.client import ControlClient
from tests.helpers.http import get
from tests.helpers.mongrel2 import HandlerSpec, free_port, make_conf, require_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import REPO_ROOT

UP = [sys.executable, "-m", "m2bridge", "up"]
CTL = [sys.executable, "-m", "m2bridge", "ctl"]
EXAMPLES = REPO_ROOT / "examples"
DEMO_CONF = REPO_ROOT / "mongrel2_conf" / "examples" / "demo.conf"

#: Runs a Python snippet as the unprivileged user ``nobody`` (the machine allows setpriv).
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3"]
#: Prints how connecting to the Unix socket ``argv[1]`` went: an exception name or "connected".
CONNECT_AS_NOBODY = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError as exc:
        print(type(exc).__name__)
    else:
        print("connected")
    """
)


def connect_as_nobody(socket_path: Path) -> str:
    """How connecting to the Unix socket ``socket_path`` goes for user nobody: an exception
    name (``PermissionError``) or ``connected``."""
    as_nobody = subprocess.run(
        [*NOBODY, "-c", CONNECT_AS_NOBODY, str(socket_path)],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return as_nobody.stdout.strip()


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
        processes: list[dict[str, Any]] = self.call("stats", name=name)["watchers"][0]["processes"]
        return processes

    def pids(self, name: str, state: str = "ready") -> list[int]:
        return [p["pid"] for p in self.processes(name) if p["state"] == state]

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.call("status", name=name)["watchers"][0]
        return status

    def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> float:
        """``wait_until(predicate)``, failing at once with the log if the supervisor exits or
        at ``timeout``; returns the seconds it took."""
        start = time.monotonic()

        def met() -> object:
            if self.proc.poll() is not None:
                pytest.fail(f"supervisor exited ({self.proc.returncode}):\n{self.log()}")
            return predicate()

        if not wait_until(met, timeout, interval=0.05):
            pytest.fail(f"condition not met in {timeout} s; log:\n{self.log()}")
        return time.monotonic() - start

    def descendants(self) -> list[int]:
        with contextlib.suppress(psutil.Error):
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        return []


def write_stack(base: Path, text: str) -> Path:
    """``text`` as ``base/stack.toml``, its run directory ``base/run`` (added to its own
    ``[stack]`` table when it has one)."""
    stack_file = base / "stack.toml"
    text = textwrap.dedent(text)
    rundir = f'rundir = "{base / "run"}"\n'
    if re.search(r"^\[stack\]\s*$", text, re.MULTILINE):
        text = re.sub(r"^\[stack\]\s*$\n?", "[stack]\n" + rundir, text, count=1, flags=re.M)
    else:
        text = "[stack]\n" + rundir + text
    stack_file.write_text(text)
    return stack_file


@contextlib.contextmanager
def running_stack(
    base: Path, text: str, wait: bool = True, log_file: Path | None = None
) -> Iterator[RunningStack]:
    """Run `m2bridge up` on a stack; always stop it (and every child) by PID afterwards.

    Its output goes to ``base/up.log``, or with ``log_file`` to ``up --log-file LOG_FILE``.
    """
    stack_file = write_stack(base, text)
    argv = [*UP, str(stack_file)]
    output = base / "up.log"  # with --log-file, what up prints outside it (nothing, normally)
    if log_file is not None:
        argv += ["--log-file", str(log_file)]
        output = base / "up.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    with supervised(
        RunningStack(proc, stack_file, base / "run", log_file or output), wait
    ) as stack:
        yield stack


@contextlib.contextmanager
def supervised(stack: RunningStack, wait: bool = True) -> Iterator[RunningStack]:
    """``stack``, whose supervisor was just started: yielded once it answers (with ``wait``),
    then always stopped, and every child it had, by PID."""
    children: set[int] = set()
    try:
        if wait:
            stack.wait_until(lambda: answers(stack))
        yield stack
        children.update(stack.descendants())
    finally:
        children.update(stack.descendants())
        stop_by_pid(stack.proc.pid, stack.proc)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def answers(stack: RunningStack) -> bool:
    """Whether the supervisor answers ``status`` on its control socket."""
    try:
        stack.call("status", timeout=0.5)
    except Exception:
        return False
    return True


def stop_by_pid(pid: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM ``pid``; SIGKILL its process group if it is still running after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            proc.wait(5)


def orphans(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (zombies waiting to be reaped do not count)."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


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


# -- stacks with the real Mongrel2 --


def mongrel2_stack(
    base: Path,
    app: str = "handlers.hello:app",
    workers: int = 2,
    extra: str = "",
    settings: dict[str, object] | None = None,
    relay: bool = True,
) -> tuple[str, int]:
    """A stack text: a mongrel2 watcher on a free port + ``workers`` m2bridge workers (watcher
    ``hello``) behind an ``m2bridge relay`` (watcher ``relay``: the one multi-worker topology,
    docs/decisions/0001-multi-worker-topology.md); ``relay=False``: the workers connect
    straight to Mongrel2, which the supervisor allows for one only. Fails (never skips)
    without the real binaries."""
    require_mongrel2()
    port = free_port()
    conf = base / "mongrel2.conf"
    handler = HandlerSpec(route="/")
    conf.write_text(make_conf(port, [handler], settings))
    options = f"--config {conf} --handler / --graceful-timeout 10"
    relay_watcher = ""
    if relay:
        endpoint = f"ipc://{base / 'relay.ipc'}"
        options += f" --relay {endpoint}"
        relay_watcher = f"""
[watchers.relay]
cmd = "$(python) -m m2bridge relay --send-spec {handler.send_spec} --bind {endpoint}"
priority = 5
graceful_timeout = 5
"""
    text = f"""
[watchers.mongrel2]
type = "mongrel2"
config = "{conf}"
graceful_timeout = 5
{relay_watcher}
[watchers.hello]
cmd = "$(python) -m m2bridge serve {app} {options}"
numprocesses = {workers}
readiness = "stats"
graceful_timeout = 10
{extra}
"""
    return text, port


def wait_active(stack: RunningStack, workers: int, timeout: float = 20) -> None:
    """Every watcher active and ``workers`` processes of ``hello`` ready."""

    def ready() -> bool:
        states = [w["state"] for w in stack.call("status")["watchers"]]
        return states == ["active"] * len(states) and len(stack.pids("hello")) == workers

    stack.wait_until(ready, timeout=timeout)


def wait_serving(stack: RunningStack, port: int, workers: int, timeout: float = 20) -> None:
    """``wait_active``, and Mongrel2 answering through the hello-world workers."""
    wait_active(stack, workers, timeout)
    assert get(port) == (200, b"Hello, world!\n")


@contextlib.contextmanager
def demo(base: Path, **kw: Any) -> Iterator[tuple[RunningStack, int]]:
    """``running_stack`` of ``mongrel2_stack(base, **kw)``; yields the stack and its HTTP port."""
    text, port = mongrel2_stack(base, **kw)
    with running_stack(base, text) as stack:
        yield stack, port


def stack_pids(stack: RunningStack) -> list[int]:
    """Every process of every watcher."""
    return [p["pid"] for w in stack.call("stats")["watchers"] for p in w["processes"]]


def served_by(stack: RunningStack, pids: set[int]) -> int:
    """Requests served, per their stats files, by those of ``hello``'s processes in ``pids``."""
    return sum(p["served"] or 0 for p in stack.processes("hello") if p["pid"] in pids)


def example_stack(base: Path, example: str) -> tuple[str, int]:
    """``examples/<example>`` made runnable in ``base`` on free ports: (stack text, HTTP port).

    The demo Mongrel2 config is copied with its three ports (6767, 9997, 9996) replaced, and
    the relay's ipc path moves into ``base``.
    """
    port, send, recv = free_port(), free_port(), free_port()
    conf = DEMO_CONF.read_text()
    conf = conf.replace("6767", str(port)).replace("9997", str(send)).replace("9996", str(recv))
    (base / "demo.conf").write_text(conf)
    text = (EXAMPLES / example).read_text().replace("[stack]\n", "", 1)
    text = text.replace("../mongrel2_conf/examples/demo.conf", "demo.conf")
    return text.replace("/tmp/m2bridge-demo-relay.ipc", "relay.ipc"), port
