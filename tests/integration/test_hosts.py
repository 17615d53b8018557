"""Worker hosts join and leave a deployment live, under load, each host its own network
namespace (tests/helpers/netns.py) and only the hosts' LAN addresses used between them.

Topology (docs/deployment.md, "Several hosts: the test's topology"): the front host runs
``m2bridge up`` with Mongrel2 (HTTP and recv_spec on the front's address, send_spec on its
loopback for the relay beside it) and the relay bound on ``tcp://FRONT:9999``; the worker
hosts w1 and w2 each run their own ``m2bridge up`` (own stack file, run dir and control
socket) with ``WORKERS`` echo workers connected to that relay and to Mongrel2's recv_spec over
TCP; the clients run on a fourth host.

The load is bounded: ``CLIENTS`` client threads (``CLIENT``, run in the client host), each with
one request outstanding, a 2 s timeout, and a new connection every ``PER_CONNECTION`` requests
(the relay runs with ``--resend``: it lets a connection go once its worker reports it
finished, so a joining host takes keep-alive connections too; one test keeps each client on
one connection throughout). Every request sent must come back 200 with the echo of its own query
string; the load stops by closing its stdin and waits for what is outstanding, so a request
lost on the wire is counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mongrel2 import HandlerSpec, make_conf
from tests.helpers.netns import Host, lan
from tests.helpers.stack import CTL, UP, RunningStack, supervised, write_stack
from tests.helpers.waiting import wait_until

log = logging.getLogger(__name__)

#: Ports on the front host: its namespace is private, so fixed ports never collide.
HTTP_PORT, SEND_PORT, RECV_PORT, RELAY_PORT = 6767, 9997, 9996, 9999
WORKERS = 2
CLIENTS = 4
PER_CONNECTION = 20
#: Seconds a joining worker host may take from `m2bridge up` to serving a request (mostly
#: the start-up of three Python processes on a loaded machine: 2.0-3.9 s measured) ...
JOIN_BOUND = 8.0
#: ... and from its workers being ready to serving a request (0.01-0.46 s measured).
SHARE_BOUND = 2.0
#: Requests answered before a change (the load is running) and after it (serving goes on).
BEFORE, AFTER = 100, 200

#: The load of one client host: ``argv = HOST PORT THREADS PROGRESS_FILE MAX_SECONDS
#: PER_CONNECTION TIMEOUT TAG``; runs until its stdin closes (or MAX_SECONDS), then prints the
#: counts: "sent"; each request ended "answered" (200 with the echo of its own query string),
#: "closed" (EOF or reset), "timed_out" (no answer in TIMEOUT seconds) or in "errors" (another
#: status, a wrong echo: described); "longest" (the longest wait, in seconds) and "closed_at"
#: (the wall-clock time of each close). TAG starts every query string: a reply that comes back
#: through another front end is a wrong echo.
CLIENT = textwrap.dedent(
    """
    import http.client, json, os, socket, sys, threading, time
    host, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    progress, limit, per_connection = sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
    timeout, tag = float(sys.argv[7]), sys.argv[8]
    stop, lock = threading.Event(), threading.Lock()
    counts = {"sent": 0, "answered": 0, "closed": 0, "timed_out": 0, "errors": [],
              "longest": 0.0, "closed_at": []}

    def one(conn, query):
        conn.request("GET", "/?" + query)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return f"status {response.status}: {body[:80]!r}"
        echoed = json.loads(body)["environ"]["QUERY_STRING"]
        return "" if echoed == query else f"echoed {echoed!r} for {query!r}"

    def client(n):
        conn, i = None, 0
        while not stop.is_set():
            if conn is None or i % per_connection == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            i += 1
            with lock:
                counts["sent"] += 1
            started = time.monotonic()
            kind, error = "answered", ""
            try:
                error = one(conn, f"{tag}c={n}&i={i}")
                kind = "errors" if error else "answered"
            except (socket.timeout, TimeoutError):
                kind = "timed_out"
            except (OSError, http.client.HTTPException) as exc:
                kind, error = "closed", repr(exc)
            except (ValueError, KeyError) as exc:
                kind, error = "errors", repr(exc)
            waited = time.monotonic() - started
            if kind != "answered":
                conn.close()
                conn = None
            with lock:
                counts["longest"] = max(counts["longest"], waited)
                if kind == "errors":
                    counts["errors"].append(error)
                else:
                    counts[kind] += 1
                if kind == "closed":
                    counts["closed_at"].append(time.time())
        if conn is not None:
            conn.close()

    def publish():
        with lock:
            text = str(counts["answered"])
        with open(progress + ".tmp", "w") as out:
            out.write(text)
        os.replace(progress + ".tmp", progress)

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    threading.Thread(target=watch_stdin, daemon=True).start()
    waited = 0.0
    while not stop.wait(0.05) and waited < limit:
        waited += 0.05
        publish()
    stop.set()
    for thread in workers:
        thread.join(timeout + 1)
    publish()
    print(json.dumps(counts))
    """
)


@dataclass
class FrontHandler(HandlerSpec):
    """A Mongrel2 Handler whose recv_spec is on the front host's address (worker hosts publish
    replies to it) and whose send_spec stays on the front's loopback: only the relay, on the
    same host, reads it (docs/deployment.md, "Security of each endpoint")."""

    address: str = "127.0.0.1"

    @property
    def recv_spec(self) -> str:
        return f"tcp://{self.address}:{self.recv_port}"


def front_stack_text(base: Path, front: Host) -> str:
    """Mongrel2 on the front's address and the relay bound there for the worker hosts."""
    handler = FrontHandler(route="/", send_port=SEND_PORT, recv_port=RECV_PORT)
    handler.address = front.address
    conf = base / "mongrel2.conf"
    text = make_conf(HTTP_PORT, [handler])
    conf.write_text(text.replace('bind_addr="127.0.0.1"', f'bind_addr="{front.address}"'))
    relay = (
        f"--send-spec {handler.send_spec} --recv-spec {handler.recv_spec} "
        f"--bind tcp://{front.address}:{RELAY_PORT} --resend"
    )
    return f"""
[watchers.mongrel2]
type = "mongrel2"
config = "{conf}"
graceful_timeout = 5

[watchers.relay]
cmd = "$(python) -m m2bridge relay {relay}"
priority = 5
graceful_timeout = 5
"""


def worker_stack_text(*fronts: Host) -> str:
    """``WORKERS`` echo workers taking requests from each front's relay and replying to that
    front's Mongrel2 (one ``--relay``/``--recv-spec`` pair per front end)."""
    pairs = " ".join(
        f"--relay tcp://{front.address}:{RELAY_PORT} --recv-spec tcp://{front.address}:{RECV_PORT}"
        for front in fronts
    )
    options = f"{pairs} --graceful-timeout 10"
    return f"""
[watchers.echo]
cmd = "$(python) -m m2bridge serve m2bridge.handlers.echo:app {options}"
numprocesses = {WORKERS}
readiness = "stats"
graceful_timeout = 10
"""


@contextlib.contextmanager
def host_stack(
    host: Host, base: Path, text: str, files: Mapping[str, str] | None = None
) -> Iterator[RunningStack]:
    """``m2bridge up`` in ``host`` (``files``: more files written beside the stack file, by
    name); always stopped afterwards (and every child, by PID)."""
    base.mkdir()
    for name, content in (files or {}).items():
        (base / name).write_text(content)
    stack_file = write_stack(base, text)
    log_file = base / "up.log"
    with open(log_file, "wb") as out:
        proc = host.popen(
            [*UP, str(stack_file)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    with supervised(RunningStack(proc, stack_file, base / "run", log_file)) as stack:
        yield stack


def all_ready(stack: RunningStack, workers: int) -> bool:
    """Every watcher active and ``workers`` processes of ``echo`` ready (when it has one)."""
    watchers = stack.call("status")["watchers"]
    if any(w["state"] != "active" for w in watchers):
        return False
    return all(
        len([p for p in stack.processes(w["name"]) if p["state"] == "ready"]) == workers
        for w in watchers
        if w["name"] == "echo"
    )


def served_by(stack: RunningStack) -> int:
    """Requests served by the ``echo`` workers of ``stack`` (over its control socket)."""
    return sum(p["served"] or 0 for p in stack.processes("echo"))


@dataclass
class Deployment:
    """The LAN, the front's stack, and the worker hosts' stacks started so far (each runs
    ``worker_text``, by default ``worker_stack_text`` of the front)."""

    hosts: dict[str, Host]
    workdir: Path
    front: RunningStack
    workers: dict[str, RunningStack] = field(default_factory=dict)
    exits: dict[str, contextlib.ExitStack] = field(default_factory=dict)
    worker_text: str = ""

    def start(self, name: str, wait: bool = True) -> RunningStack:
        """Start worker host ``name``'s stack (if it is not running); with ``wait``, until its
        workers are ready."""
        if name in self.workers and self.workers[name].proc.poll() is not None:
            self.stop(name)  # it quit: start it again
        if name not in self.workers:
            exit_stack = contextlib.ExitStack()
            base = self.workdir / f"{name}-{time.monotonic_ns()}"
            text = self.worker_text or worker_stack_text(self.hosts["front"])
            self.workers[name] = exit_stack.enter_context(host_stack(self.hosts[name], base, text))
            self.exits[name] = exit_stack
        stack = self.workers[name]
        if wait:
            stack.wait_until(lambda: all_ready(stack, WORKERS), timeout=20)
        return stack

    def stop(self, name: str) -> None:
        """Stop worker host ``name``'s stack, if it runs."""
        if name in self.workers:
            del self.workers[name]
            self.exits.pop(name).close()

    def ctl(self, name: str, *argv: str) -> subprocess.CompletedProcess[str]:
        """``m2bridge ctl -s STACK ARGV`` run inside worker host ``name``."""
        stack = self.workers[name]
        return self.hosts[name].run([*CTL, "-s", str(stack.stack_file), *argv])

    def served(self, name: str) -> int:
        """Requests served by worker host ``name``'s workers (``ctl stats --json`` in it)."""
        result = self.ctl(name, "--json", "stats", "echo")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return sum(p["served"] or 0 for w in data["watchers"] for p in w["processes"])


@dataclass
class Load:
    """A running ``CLIENT`` in the client host."""

    proc: subprocess.Popen[str]
    progress: Path
    result: dict[str, Any] = field(default_factory=dict)

    def answered(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(self.progress.read_text() or 0)
        return 0

    def wait_answered(self, requests: int, timeout: float = 10.0) -> None:
        """Wait for ``requests`` more answers from now."""
        start = self.answered()
        assert wait_until(lambda: self.answered() - start >= requests, timeout), (
            f"only {self.answered() - start} of {requests} requests answered in {timeout} s"
        )

    def finish(self) -> dict[str, Any]:
        """Stop the clients, wait for their outstanding requests, return the counts."""
        out, err = self.proc.communicate(input="", timeout=15)
        assert self.proc.returncode == 0, err
        self.result = json.loads(out)
        return self.result


@contextlib.contextmanager
def load(
    deployment: Deployment,
    seconds: float = 20.0,
    timeout: float = 2.0,
    front: str = "front",
    tag: str = "",
    per_connection: int = PER_CONNECTION,
) -> Iterator[Load]:
    """``CLIENTS`` clients (``CLIENT``) in the client host against ``front``'s HTTP address,
    each request given ``timeout`` seconds, every query string starting with ``tag``, a new
    connection every ``per_connection`` requests."""
    progress = deployment.workdir / f"progress-{time.monotonic_ns()}"
    argv = [
        sys.executable,
        "-c",
        CLIENT,
        deployment.hosts[front].address,
        str(HTTP_PORT),
        str(CLIENTS),
        str(progress),
        str(seconds),
        str(per_connection),
        str(timeout),
        tag,
    ]
    proc = deployment.hosts["client"].popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    running = Load(proc, progress)
    try:
        yield running
    finally:
        if proc.poll() is None and not running.result:
            proc.kill()
            proc.communicate(timeout=5)


def report(what: str, counts: dict[str, Any]) -> str:
    sent, answered = counts["sent"], counts["answered"]
    return (
        f"{what}: {sent} sent, {answered} answered, {sent - answered} lost ({counts['closed']} "
        f"closed, {counts['timed_out']} timed out), longest wait {counts['longest']:.3f} s "
        f"{counts['errors'][:3]}"
    )


@contextlib.contextmanager
def deployed() -> Iterator[Deployment]:
    """The LAN (front, w1, w2, client) with the front's stack ready and no worker host yet;
    every worker host started is stopped, and everything removed, at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="m2b-", dir="/tmp"))
    try:
        with lan(("front", "w1", "w2", "client")) as hosts:
            front = hosts["front"]
            with host_stack(front, workdir / "front", front_stack_text(workdir, front)) as stack:
                stack.wait_until(lambda: all_ready(stack, WORKERS), timeout=20)
                deployment = Deployment(hosts, workdir, stack)
                try:
                    yield deployment
                finally:
                    for name in list(deployment.workers):
                        deployment.stop(name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with deployed() as running:
        yield running


def test_a_worker_host_joining_under_load_serves_within_2_s_of_being_ready(deployment):
    deployment.stop("w2")
    deployment.start("w1")
    with load(deployment) as running:
        running.wait_answered(BEFORE)
        started = time.monotonic()
        w2 = deployment.start("w2", wait=False)
        ready = w2.wait_until(lambda: all_ready(w2, WORKERS), timeout=JOIN_BOUND)
        took = w2.wait_until(lambda: served_by(w2) > 0, timeout=SHARE_BOUND)
        joined = time.monotonic() - started
        assert joined < JOIN_BOUND, f"w2 took {joined:.2f} s to serve a request"
        assert deployment.served("w2") > 0  # as `ctl stats` in w2 shows it
        running.wait_answered(BEFORE)
        counts = running.finish()
    log.warning(report(f"w2 joined in {joined:.2f} s (ready {ready:.2f} s + {took:.2f} s)", counts))
    assert counts["sent"] == counts["answered"], report("lost", counts)


def test_a_worker_host_joining_under_load_takes_a_share_of_long_keep_alive_connections(
    deployment,
):
    """Each client keeps one connection for the whole run, first all on w1: w2 still gets
    requests, as the relay lets a finished connection go (``--resend``) and places its next
    request by credit."""
    deployment.stop("w2")
    deployment.start("w1")
    with load(deployment, per_connection=1_000_000) as running:
        running.wait_answered(BEFORE)
        w2 = deployment.start("w2")
        took = w2.wait_until(lambda: served_by(w2) > 0, timeout=SHARE_BOUND)
        running.wait_answered(BEFORE)
        counts = running.finish()
    log.warning(report(f"w2 joined {CLIENTS} long connections, served after {took:.2f} s", counts))
    assert counts["sent"] == counts["answered"], report("lost", counts)
    assert deployment.served("w2") > 0


def test_a_worker_host_quitting_under_load_loses_no_request_and_the_other_keeps_serving(
    deployment,
):
    w1 = deployment.start("w1")
    deployment.start("w2")
    w1_before = served_by(w1)
    with load(deployment) as running:
        running.wait_answered(BEFORE)
        w1.wait_until(lambda: served_by(w1) > w1_before, timeout=2)  # w1 has a share to drain
        quit_ = deployment.ctl("w1", "quit")
        assert quit_.returncode == 0, quit_.stderr
        w1.proc.wait(15)
        w2_before = deployment.served("w2")
        running.wait_answered(AFTER)
        counts = running.finish()
    log.warning(report("w1 quit", counts))
    assert counts["sent"] == counts["answered"], report("lost", counts)
    assert deployment.served("w2") > w2_before
