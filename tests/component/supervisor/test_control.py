"""The supervisor's control plane with real processes: permissions, tokens, bad input, the
`ctl` and `top` commands and their exit codes, daemon mode, inherited sockets, serve_workers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import zmq

from m2bridge.errors import ControlError
from m2bridge.supervisor.client import ControlClient
from m2bridge.supervisor.control import Errno
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import (
    CTL,
    FAKE_WORKER,
    UP,
    connect_as_nobody,
    fake_watcher,
    orphans,
    running_stack,
    stop_by_pid,
    write_stack,
)
from tests.helpers.waiting import wait_until

TOP = [sys.executable, "-m", "m2bridge", "top"]


# -- who may connect --


def test_control_socket_is_private_to_its_user(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        ctl_path = stack.rundir / "m2bridge.ctl"
        assert stat.S_IMODE(stack.rundir.stat().st_mode) == 0o700
        assert stat.S_IMODE(ctl_path.stat().st_mode) == 0o600
        assert connect_as_nobody(ctl_path) == "PermissionError"
        # Even with every directory opened up, the socket's own mode refuses the other user.
        base.chmod(0o755)
        stack.rundir.chmod(0o755)
        assert connect_as_nobody(ctl_path) == "PermissionError"
        assert stack.call("list") == {"watchers": ["w"]}


def test_tcp_endpoint_refuses_a_client_without_the_right_token(base):
    port = free_port()
    control = f'[control]\nendpoint = "tcp://127.0.0.1:{port}"\ntoken = "s3cret"\n'
    with running_stack(base, control + fake_watcher(numprocesses=1), wait=False) as stack:
        endpoint = f"tcp://127.0.0.1:{port}"
        stack.wait_until(lambda: _tcp_answers(endpoint, "s3cret"))
        for token in (None, "wrong", "s3cre"):
            with ControlClient(endpoint, timeout=2, token=token) as client:
                with pytest.raises(ControlError, match="missing or wrong token") as info:
                    client.call("list")
                assert info.value.errno == Errno.UNAUTHORIZED
        assert "refused 'list': missing or wrong token" in stack.log()
        refused = subprocess.run(
            [*CTL, "-e", endpoint, "list"], capture_output=True, text=True, timeout=20, check=False
        )
        assert refused.returncode == 1
        token_file = base / "token"
        token_file.write_text("s3cret\n")
        allowed = subprocess.run(
            [*CTL, "-e", endpoint, "--token-file", str(token_file), "list"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert (allowed.returncode, allowed.stdout) == (0, "w\n")
        assert stack.ctl("list").stdout == "w\n"  # --stack reads the token from the file


def _tcp_answers(endpoint: str, token: str) -> bool:
    try:
        with ControlClient(endpoint, timeout=0.5, token=token) as client:
            client.call("list")
    except ControlError:
        return False
    return True


def test_garbage_on_the_control_socket_gets_an_error_and_the_supervisor_survives(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        try:
            sock.connect(stack.endpoint)
            for junk in (b"\x00\xff not json", b'{"id": 4, "command": 7}', b"[]", b"{" * 60000):
                sock.send(junk)
                reply = json.loads(sock.recv())
                assert reply["status"] == "error"
                assert reply["errno"] == Errno.BAD_MESSAGE
            sock.send(b'{"id": 9, "command": "nope", "args": {}}')
            assert json.loads(sock.recv()) == {
                "id": 9,
                "status": "error",
                "error": "unknown command 'nope'",
                "errno": Errno.UNKNOWN_COMMAND,
            }
            # Past MAXMSGSIZE the peer is dropped unanswered: the supervisor never buffers it.
            oversized = ctx.socket(zmq.REQ)
            oversized.setsockopt(zmq.LINGER, 0)
            oversized.setsockopt(zmq.RCVTIMEO, 500)
            oversized.connect(stack.endpoint)
            oversized.send(b"x" * 100_000)
            with pytest.raises(zmq.Again):
                oversized.recv()
            oversized.close()
        finally:
            sock.close()
            ctx.term()
        assert stack.call("list") == {"watchers": ["w"]}
        assert "control: bad request" in stack.log()


def test_commands_answer_while_a_reload_is_in_progress(base):
    watcher = fake_watcher(numprocesses=2, env={"READY_AFTER": "1.5"})
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2, timeout=15)
        stack.call("reload", name="w")
        for _ in range(10):
            start = time.monotonic()
            assert stack.status("w")["state"] == "reloading"
            assert time.monotonic() - start < 0.3
            time.sleep(0.05)


# -- the ctl and top commands --


def test_ctl_exit_codes_and_json(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        ok = stack.ctl("--json", "incr", "w", "2")
        assert (ok.returncode, json.loads(ok.stdout)) == (0, {"name": "w", "numprocesses": 3})
        human = stack.ctl("numprocesses", "w")
        assert (human.returncode, human.stdout) == (0, "w: 3 processes\n")
        failed = stack.ctl("--json", "incr", "nope")
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["errno"] == Errno.NO_SUCH_WATCHER
        usage = stack.ctl("incr")
        assert usage.returncode == 2
        assert "usage: incr NAME [N]" in usage.stderr
        assert stack.ctl("frobnicate").returncode == 2
        assert stack.ctl("help", "reload").stdout.startswith("reload [NAME]: replace every")
        settled = stack.ctl("--wait", "10", "decr", "w", "2")
        assert settled.returncode == 0
        assert len(stack.processes("w")) == 1
    gone = subprocess.run(
        [*CTL, "-e", f"ipc://{base}/run/m2bridge.ctl", "list"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert gone.returncode == 3
    assert "no supervisor at" in gone.stderr


def test_ctl_times_out_with_exit_3_when_nobody_answers(base):
    ctx = zmq.Context()
    silent = ctx.socket(zmq.REP)
    silent.setsockopt(zmq.LINGER, 0)
    try:
        silent.bind(f"ipc://{base}/silent.ctl")
        result = subprocess.run(
            [*CTL, "--timeout", "0.5", "-e", f"ipc://{base}/silent.ctl", "list"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        silent.close()
        ctx.term()
    assert result.returncode == 3
    assert "no answer from" in result.stderr


def test_top_shows_every_watcher_and_process(base):
    with running_stack(base, fake_watcher(numprocesses=2) + fake_watcher("b", 1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2 and stack.pids("b"))
        result = subprocess.run(
            [*TOP, "-s", str(stack.stack_file), "--iterations", "2", "--interval", "0.2"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert result.returncode == 0
        assert result.stdout.count("m2bridge top - stack stack") == 2
        assert "w: 2 processes" in result.stdout
        assert "b: 1 processes" in result.stdout
        assert result.stdout.count("[active]") == 4
        for pid in stack.pids("w"):
            assert str(pid) in result.stdout


def test_bad_stack_file_fails_up_with_the_key_named(base):
    stack_file = write_stack(base, "[watchers.w]\ncmd = 'true'\nnumprocesses = -1\n")
    result = subprocess.run(
        [*UP, str(stack_file)], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 1
    assert "watchers.w.numprocesses: expected an integer >= 0, got -1" in result.stderr


# -- daemon mode --


def test_daemon_mode_writes_a_pid_file_and_quits_cleanly(base):
    stack_file = write_stack(base, fake_watcher(numprocesses=2))
    pid_file = base / "m2b.pid"
    started = subprocess.run(
        [*UP, str(stack_file), "--daemon", "--pid-file", str(pid_file)],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    pid = int(pid_file.read_text()) if pid_file.exists() else 0
    try:
        assert started.returncode == 0, started.stderr
        assert f"supervisor running as pid {pid}" in started.stdout
        client = ControlClient(f"ipc://{base}/run/m2bridge.ctl", timeout=5)
        with client:
            assert wait_until(lambda: len(_ready(client)) == 2, 10, interval=0.05)
            children = [p["pid"] for p in client.call("stats")["watchers"][0]["processes"]]
            assert len(children) == 2
        quit_ = subprocess.run(
            [*CTL, "-s", str(stack_file), "--wait", "15", "quit"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert quit_.returncode == 0, quit_.stderr
        assert wait_until(lambda: not orphans([pid]), 10, interval=0.05)
        assert orphans([pid, *children]) == []
        assert not pid_file.exists()
        assert "w.1 | worker 1 up" in (base / "run" / "up.log").read_text()
    finally:
        if pid and orphans([pid]):
            os.kill(pid, signal.SIGKILL)


def _ready(client: ControlClient) -> list[int]:
    processes = client.call("stats")["watchers"][0]["processes"]
    return [p["pid"] for p in processes if p["state"] == "ready"]


def test_daemon_that_cannot_start_reports_why(base):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack_file = write_stack(base, f"[sockets.s]\nport = {port}\n[watchers.w]\ncmd = 'true'\n")
        result = subprocess.run(
            [*UP, str(stack_file), "--daemon"], capture_output=True, text=True, timeout=40
        )
    assert result.returncode == 1
    assert "the supervisor did not start" in result.stderr
    assert "sockets.s: cannot bind" in result.stderr


# -- sockets handed to workers by fd --

HTTP_ON_FD = textwrap.dedent(
    """
    import os, socket, sys
    sock = socket.socket(fileno=int(sys.argv[1]))
    while True:
        conn, _ = sock.accept()
        conn.recv(65536)
        body = f"pid {os.getpid()} wid {sys.argv[2]}".encode()
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
        conn.close()
    """
)


def test_socket_is_bound_once_and_inherited_by_fd(base):
    text = (
        "[sockets.web]\nhost = '127.0.0.1'\nport = 0\n"
        "[watchers.web]\n"
        f'cmd = ["$(python)", "-c", {json.dumps(HTTP_ON_FD)}, "$(sockets.web)", "$(wid)"]\n'
    )
    with running_stack(base, text) as stack:
        (listed,) = stack.call("listsockets")["sockets"]
        host, port = listed["address"].rsplit(":", 1)
        assert listed["name"] == "web"
        first = _get(host, int(port))
        assert first.endswith("wid 1")
        killed = psutil.Process(int(first.split()[1]))
        killed.kill()
        # SIGKILL is asynchronous: until it lands, the dying process may still accept.
        stack.wait_until(lambda: not killed.is_running() or killed.status() == "zombie")
        second = _get(host, int(port))  # queued on the kept socket until the respawn accepts
        assert second != first
        assert second.endswith("wid 1")


def _get(host: str, port: int) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


# -- serve_workers: what `m2bridge serve --workers N` runs --


def test_serve_workers_runs_copies_with_wid_and_stops_on_sigterm(base):
    name = f"t{os.getpid()}"
    code = (
        "import sys\n"
        "from m2bridge.supervisor import serve_workers\n"
        f"sys.exit(serve_workers([sys.executable, '-c', {FAKE_WORKER!r}, 'slot=$(wid)'],"
        f" 2, 5.0, {name!r}))\n"
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
    log_file = base / "serve.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        endpoint = f"ipc://{base}/m2bridge/{name}/m2bridge.ctl"
        ready: list[int] = []

        def two_ready() -> bool:
            try:
                with ControlClient(endpoint, timeout=1) as client:
                    ready[:] = _ready(client)
            except ControlError:
                return False
            return len(ready) == 2

        assert wait_until(two_ready, 15, interval=0.1), log_file.read_text()
        env_ctl = subprocess.run(
            [*CTL, "--name", name, "list"], env=env, capture_output=True, text=True, timeout=20
        )
        assert env_ctl.stdout == f"{name}\n"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
        log = log_file.read_text()
        assert f"{name}.1 | worker 1 up ['slot=1']" in log
        assert f"{name}.2 | worker 2 up ['slot=2']" in log
        assert orphans(ready) == []
    finally:
        stop_by_pid(proc.pid, proc)
