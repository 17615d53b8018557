"""Start and stop the stacks under test, each on a free loopback port, and find their processes.

Every stack is a set of processes this module started (stopped by PID, SIGKILL after a grace)
plus their descendants, each with a role (``master``, ``worker``, ``mongrel2``,
``supervisor``) used to report CPU and RSS per role. The peers (gunicorn, uWSGI with and without
keep-alive, granian) live here, each as a pure ``*_argv`` function and a starter; the
Mongrel2-based stacks are in ``bench/m2stacks.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .workload import CHECKOUT, WORKLOADS, answer_problem

log = logging.getLogger("bench.stacks")

#: The directory the benchmark's apps import from (servers run there, with it on PYTHONPATH):
#: the checkout's root, or the site-packages that holds ``m2bridge`` when installed.
ROOT = Path(__file__).resolve().parents[1 if CHECKOUT else 2]
HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
READY_TIMEOUT_S = 20.0


class StackError(RuntimeError):
    """A stack did not start, or answered its probe request wrongly."""


@dataclass
class Stack:
    """A running stack: its URL, the processes started for it and what it runs.

    Attributes:
        name: the stack name (``gunicorn-sync``, ``m2-zmq``, ...).
        app: the app name (``hello``, ``io``, ...).
        url: the URL wrk loads.
        how: one line saying how it was started (goes into the report).
        roots: the processes this module started, with their roles.
        child_role: role given to any descendant of a root (``worker`` unless ``role_of`` says).
        cleanup: callables run after the processes are stopped.
        stats_argv: a command printing the supervisor's ``stats`` as JSON (supervised stacks).
    """

    name: str
    app: str
    url: str
    how: str
    roots: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    child_role: str = "worker"
    stop_signal: int = signal.SIGTERM
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    stats_argv: list[str] | None = None

    def start(
        self, role: str, argv: list[str], log_path: Path, pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """Spawn one root process of the stack (see ``spawn``) and remember its log."""
        proc = spawn(argv, log_path, pass_fds)
        self.roots.append((role, proc))
        self.logs.append(log_path)
        return proc

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of every log of the stack, for error messages."""
        parts = []
        for path in self.logs:
            try:
                text = path.read_text("utf-8", "replace").strip().splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"[{path.name}] " + " / ".join(text))
        return " ".join(parts)

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """Every live process of the stack, roots first, each with its role."""
        found: list[tuple[str, psutil.Process]] = []
        for role, popen in self.roots:
            try:
                root = psutil.Process(popen.pid)
                kids = root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            found.append((role, root))
            found.extend((role_of(kid, self.child_role), kid) for kid in kids)
        return found

    def check_alive(self) -> None:
        """Raise StackError if a started process has exited."""
        for role, popen in self.roots:
            if popen.poll() is not None:
                raise StackError(
                    f"{self.name}: {role} exited with status {popen.returncode}: {self.log_tail()}"
                )

    def stop(self) -> None:
        """Stop every started process by PID (SIGKILL after a grace), then any descendant
        still alive (by PID too), then clean up."""
        leftovers = [proc for _, proc in self.processes()]
        for _, popen in reversed(self.roots):
            stop_process(popen, self.stop_signal)
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    log.warning("%s: pid %d outlived its parent; killing it", self.name, proc.pid)
                    proc.kill()
        for fn in self.cleanup:
            try:
                fn()
            except OSError as exc:
                log.warning("%s: cleanup failed: %s", self.name, exc)


def role_of(proc: psutil.Process, default: str) -> str:
    """``mongrel2`` for a mongrel2 process, ``relay`` for ``m2bridge relay``, else ``default``."""
    try:
        if "mongrel2" in proc.name():
            return "mongrel2"
        argv = proc.cmdline()
    except psutil.Error:
        return default
    return "relay" if "m2bridge" in argv and "relay" in argv else default


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def spawn(
    argv: list[str],
    log_path: Path,
    pass_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session from the repository root, output to ``log_path``."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=pass_fds,
            env=full_env,
            start_new_session=True,
        )


def stop_process(popen: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal one child by PID, SIGKILL it after ``STOP_GRACE_S``, and reap it."""
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(popen.pid, sig)
    try:
        popen.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored signal %d; killing it", popen.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
        popen.wait(STOP_GRACE_S)


def wait_ready(stack: Stack, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll the stack with the benchmark's own request until it answers it correctly.

    Raises:
        StackError: a process died, or no correct answer came within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            status, body = fetch(stack.url, stack.app)
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
            continue
        problem = answer_problem(stack.app, status, body)
        if problem is None:
            return
        raise StackError(
            f"{stack.name}/{stack.app}: wrong answer to the probe: {problem} {stack.log_tail(2)}"
        )
    raise StackError(
        f"{stack.name}/{stack.app}: not ready after {timeout:.0f} s ({last}) {stack.log_tail()}"
    )


def fetch(url: str, app: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One request of the kind wrk sends for ``app``: (status, body)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    work = WORKLOADS[app]
    headers = {"Content-Type": work.content_type} if work.content_type else {}
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(work.method, "/" + path, body=work.body() or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def url_for(port: int, app: str) -> str:
    """The URL wrk loads for ``app`` on a server at ``port``."""
    return f"http://{HOST}:{port}{WORKLOADS[app].path}"


def start_gunicorn(app: str, workers: int, workdir: Path, worker_class: str) -> Stack:
    """gunicorn with ``workers`` processes of ``worker_class`` (``sync`` or ``gevent``)."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    argv += ["--worker-class", worker_class, "--bind", f"{HOST}:{port}"]
    argv += ["--log-level", "warning", "--worker-connections", "1000", WORKLOADS[app].app]
    how = f"gunicorn {worker_class}: 1 master + {workers} workers"
    stack = Stack(
        f"gunicorn-{worker_class}", app, url_for(port, app), how, stop_signal=signal.SIGINT
    )
    stack.start("master", argv, workdir / f"gunicorn-{worker_class}.log")
    return stack


def uwsgi_argv(app: str, workers: int, port: int, *, keepalive: bool) -> list[str]:
    """uWSGI's command line: ``workers`` processes and a master, no request log, backlog 1024.

    ``keepalive`` picks ``--http11-socket`` (HTTP/1.1 keep-alive, as wrk and browsers use it);
    otherwise ``--http-socket``, which closes every connection, and the bench says so with
    ``Connection: close`` so that wrk reconnects instead of counting each close as a read error
    (a real client would reconnect the same way).
    """
    socket_option = "--http11-socket" if keepalive else "--http-socket"
    argv = ["uwsgi", socket_option, f"{HOST}:{port}", "--processes", str(workers)]
    argv += ["--master", "--die-on-term", "--disable-logging", "--listen", "1024"]
    if not keepalive:
        argv += ["--add-header", "Connection: close"]
    argv += ["--pythonpath", str(ROOT), "--module", WORKLOADS[app].app]
    return argv


def start_uwsgi(app: str, workers: int, workdir: Path) -> Stack:
    """uWSGI with ``--http-socket`` (one request per connection) and ``workers`` processes."""
    port = free_port()
    how = f"uwsgi --http-socket: 1 master + {workers} processes (Connection: close)"
    stack = Stack("uwsgi", app, url_for(port, app), how, stop_signal=signal.SIGINT)
    stack.start("master", uwsgi_argv(app, workers, port, keepalive=False), workdir / "uwsgi.log")
    return stack


def start_uwsgi_keepalive(app: str, workers: int, workdir: Path) -> Stack:
    """uWSGI with ``--http11-socket`` (keep-alive) and ``workers`` processes. Each process
    stays on one keep-alive connection while its client keeps sending: the others wait."""
    port = free_port()
    how = (
        f"uwsgi --http11-socket: 1 master + {workers} processes (keep-alive; each process "
        "serves one connection at a time)"
    )
    stack = Stack("uwsgi-keepalive", app, url_for(port, app), how, stop_signal=signal.SIGINT)
    argv = uwsgi_argv(app, workers, port, keepalive=True)
    stack.start("master", argv, workdir / "uwsgi-keepalive.log")
    return stack


def granian_argv(app: str, workers: int, port: int) -> list[str]:
    """granian's command line: the WSGI interface, ``workers`` processes, HTTP/1 only, on
    loopback, no access log and no WebSocket handling (warnings and errors still logged)."""
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--http", "1", "--no-ws"]
    argv += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    argv += ["--backlog", "1024", "--no-access-log", "--log-level", "warning"]
    argv += ["--working-dir", str(ROOT), WORKLOADS[app].app]
    return argv


def start_granian(app: str, workers: int, workdir: Path) -> Stack:
    """granian (Rust HTTP server, WSGI interface) with ``workers`` processes."""
    port = free_port()
    how = f"granian --interface wsgi --http 1: 1 main process + {workers} workers (keep-alive)"
    stack = Stack("granian", app, url_for(port, app), how, stop_signal=signal.SIGINT)
    stack.start("master", granian_argv(app, workers, port), workdir / "granian.log")
    return stack
