"""``m2bridge serve`` as a real process: --reload (with --chdir, --pythonpath, --env and JSON
logs) and socket activation (``--fd systemd``), each answering HTTP on loopback; and the
access log's queue time, from a dispatcher in this process."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gevent
from gevent.pool import Pool

from m2bridge.config import WorkerConfig
from m2bridge.logs import AccessLog, access_log_format
from m2bridge.reloader import app_directories
from m2bridge.testing import make_request_frame
from m2bridge.worker.connection import ConnectionTable
from m2bridge.worker.dispatch import Dispatcher
from m2bridge.worker.stats import WorkerStats
from tests.helpers.mongrel2 import free_port
from tests.helpers.sink import NotRelayed
from tests.helpers.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]

APP = """
import os

import words

VERSION = "{version}"


def app(environ, start_response):
    body = " ".join(
        [os.environ.get("GREETING", "-"), words.WORD, VERSION, os.environ.get("LISTEN_FDS", "none")]
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


#: Start argv[2:] as systemd starts a socket-activated service: the socket (fd argv[1]) as
#: fds 3 ("admin") and 4 ("web"), and LISTEN_* naming this pid.
SYSTEMD_LIKE = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.dup2(fd, 4)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="admin:web")
os.execv(sys.argv[2], sys.argv[2:])
"""


def write_app(directory: Path, version: str) -> None:
    (directory / "reloadapp.py").write_text(APP.format(version=version))


def child_env() -> dict[str, str]:
    """This checkout first on the child's path (whatever m2bridge is installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@contextmanager
def running(argv: list[str], log_path: Path, **popen: object) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (stderr to ``log_path``); stop it by PID: SIGTERM, then SIGKILL."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stderr=log, env=child_env(), **popen)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def get(port: int, path: str = "/") -> str | None:
    """The body answered on ``port``, or None if nothing answers (yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    except OSError:
        return None
    finally:
        conn.close()


def answer_becomes(port: int, expected: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def answered() -> bool:
        assert proc.poll() is None, log.read_text()
        return get(port) == expected

    assert wait_until(answered, timeout=15, interval=0.1), (get(port), log.read_text())


def test_reload_restarts_the_worker_on_a_change_and_applies_chdir_pythonpath_env(tmp_path):
    app_dir, lib = tmp_path / "app", tmp_path / "app" / "lib"
    lib.mkdir(parents=True)
    (lib / "words.py").write_text('WORD = "from-lib"\n')
    write_app(app_dir, "v1")
    port, log = free_port(), tmp_path / "serve.log"
    argv = [
        sys.executable, "-m", "m2bridge", "serve", "reloadapp:app", "--reload",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(app_dir), "--pythonpath", "lib",
        "--env", "GREETING=hi", "--log-format", "json", "--access-log", "-",
        "--graceful-timeout", "2",
    ]  # fmt: skip
    with running(argv, log, cwd=tmp_path) as proc:
        answer_becomes(port, "hi from-lib v1 none", proc, log)
        write_app(app_dir, "v2-changed")
        answer_becomes(port, "hi from-lib v2-changed none", proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [entry["message"] for entry in entries if "message" in entry]
    assert f"reloading: {app_dir / 'reloadapp.py'} changed" in messages
    assert len({entry["pid"] for entry in entries if "pid" in entry}) >= 3  # parent, 2 workers
    access = [entry for entry in entries if "queue_ms" in entry]
    assert access
    assert {(entry["method"], entry["path"], entry["status"]) for entry in access} == {
        ("GET", "/", 200)
    }


def test_fd_systemd_serves_on_the_socket_systemd_passed_and_hides_it_from_the_app(tmp_path):
    write_app(tmp_path, "activated")
    (tmp_path / "words.py").write_text('WORD = "w"\n')
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port, fd = listener.getsockname()[1], listener.fileno()
    # systemd's protocol: the sockets from fd 3 on, LISTEN_PID the pid of the process reading
    # them (exec keeps the pid)
    argv = [
        sys.executable, "-c", SYSTEMD_LIKE, str(fd), sys.executable, "-m", "m2bridge", "serve",
        "reloadapp:app", "--fd", "systemd", "--fd-name", "web", "--env", "GREETING=sd",
    ]  # fmt: skip
    try:
        with running(argv, tmp_path / "serve.log", cwd=tmp_path, pass_fds=(fd,)) as proc:
            answer_becomes(port, "sd w activated none", proc, tmp_path / "serve.log")
    finally:
        listener.close()


class _Channel(NotRelayed):
    """The least a Dispatcher sends replies to."""

    index = 0
    recv_spec = "ipc://serve-options-test"
    reply_ident = None

    def send(self, message: bytes) -> None:
        pass


def _slow_app(environ: Any, start_response: Any) -> list[bytes]:
    gevent.sleep(0.05 if environ["PATH_INFO"] == "/slow" else 0)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def test_access_log_queue_time_is_the_wait_behind_an_earlier_request_on_the_connection():
    config = WorkerConfig(app="test:app")
    stream = io.StringIO()
    access = AccessLog(stream, line_format=access_log_format("%(U)s %(Q)s"))
    table = ConnectionTable(Pool(config.concurrency))
    dispatcher = Dispatcher(_slow_app, config, table, WorkerStats(), access, fast=False)

    def run() -> None:
        for path in ("/slow", "/next"):
            dispatcher.dispatch(_Channel(), make_request_frame(path, conn_id=7))
        assert wait_until(lambda: len(table) == 0, 5, interval=0.001, sleep=gevent.sleep)

    gevent.spawn(run).get(timeout=10)
    queued = dict(line.split() for line in stream.getvalue().splitlines())
    assert float(queued["/slow"]) < 40.0 <= float(queued["/next"])


# -- what --reload watches


def test_reload_watches_a_modules_directory_a_packages_directory_and_pythonpath(
    tmp_path, monkeypatch
):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "lonemod.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    extra = [str(tmp_path / "pkg"), str(tmp_path / "missing")]
    assert app_directories("pkg.sub:app", extra) == [str(tmp_path / "pkg")]
    assert app_directories("lonemod:app") == [str(tmp_path)]
    assert app_directories("not_a_module_anywhere:app") == [str(tmp_path)]
