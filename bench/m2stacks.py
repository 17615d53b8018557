"""The Mongrel2-based stacks: ``m2-static``, ``m2-canned``, ``m2-zmq`` and ``fd``.

Each gets its own chroot under the run's work directory, a config loaded with the real ``m2sh``
and the real ``mongrel2`` in the foreground (``server.daemonize=0``, no access log). Handlers
talk to it over TCP on free loopback ports with the tnetstring protocol. With ``--direct`` the
m2bridge stacks are started here as plain processes (``m2bridge serve``, ``m2bridge relay``)
instead of under ``m2bridge up`` (``bench/supervised.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from m2bridge.supervisor import mongrel2

from .stacks import HOST, Stack, StackError, free_port, url_for
from .workload import PACKAGE, WORKLOADS, canned_body

SERVER_UUID = "bench-server"
#: files m2-static serves, named by app.
STATIC_FILES = {
    "hello": ("hello.txt", canned_body("hello")),
    "big": ("big.bin", canned_body("big")),
}
SETTINGS = {
    "server.daemonize": 0,
    "disable.access_logging": 1,
    "upload.temp_store": "/tmp/upload.XXXXXX",
}


@dataclass(frozen=True)
class Endpoints:
    """One Mongrel2 handler's ZeroMQ endpoints."""

    send_spec: str
    recv_spec: str
    send_ident: str

    @classmethod
    def on_free_ports(cls) -> Endpoints:
        return cls(f"tcp://{HOST}:{free_port()}", f"tcp://{HOST}:{free_port()}", str(uuid.uuid4()))

    def conf(self) -> str:
        return (
            f"Handler(send_spec='{self.send_spec}', send_ident='{self.send_ident}', "
            f"recv_spec='{self.recv_spec}', recv_ident='', protocol='tnetstring')"
        )


def config_text(port: int, target: str) -> str:
    """An m2sh config: one server on 127.0.0.1:``port``, every path routed to ``target``."""
    settings = ", ".join(f'"{k}": "{v}"' for k, v in SETTINGS.items())
    return f"""
main = Server(
    uuid="{SERVER_UUID}", access_log="/logs/access.log", error_log="/logs/error.log",
    chroot="./", pid_file="/run/mongrel2.pid", default_host="localhost", name="main",
    bind_addr="{HOST}", port={port},
    hosts=[Host(name="localhost", routes={{"/": {target}}})]
)
settings = {{{settings}}}
servers = [main]
"""


def load_config(chroot: Path, text: str) -> Path:
    """Write ``text`` and load it with the real m2sh; return the sqlite path.

    Raises:
        StackError: m2sh printed an error (it exits 0 even then) or wrote no database.
    """
    conf, db = chroot / "mongrel2.conf", chroot / "config.sqlite"
    conf.write_text(text)
    db.unlink(missing_ok=True)
    env = {**os.environ, "LOGNAME": os.environ.get("LOGNAME", "bench")}
    argv = [mongrel2.find_binary("m2sh"), "load", "-config", str(conf), "-db", str(db)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
    if "[ERROR]" in result.stderr or not db.exists():
        raise StackError(f"m2sh load failed: {result.stderr.strip()[-500:]}")
    return db


def start_mongrel2(stack: Stack, chroot: Path, target: str) -> int:
    """Load a config routing ``/`` to ``target``, start mongrel2 in ``chroot``; return its port."""
    mongrel2.prepare_chroot(chroot)
    port = free_port()
    db = load_config(chroot, config_text(port, target))
    with open(chroot / "mongrel2.stderr", "ab") as err:
        proc = subprocess.Popen(
            mongrel2.mongrel2_argv(db, SERVER_UUID),
            cwd=chroot,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    stack.roots.append(("mongrel2", proc))
    stack.logs.append(chroot / "mongrel2.stderr")
    stack.cleanup.append(lambda: shutil.rmtree(chroot / "logs", ignore_errors=True))
    return port


def start_static(app: str, workers: int, workdir: Path) -> Stack:
    """Mongrel2 alone serving the app's response body as a file (a Dir route)."""
    name, data = STATIC_FILES[app]
    chroot = workdir / "m2-static"
    (chroot / "static").mkdir(parents=True, exist_ok=True)
    (chroot / "static" / name).write_bytes(data)
    stack = Stack("m2-static", app, "", "mongrel2 Dir route, no handler")
    target = "Dir(base='static/', index_file='hello.txt', default_ctype='text/plain')"
    port = start_mongrel2(stack, chroot, target)
    stack.url = f"http://{HOST}:{port}/{name}"
    return stack


def start_canned(app: str, workers: int, workdir: Path) -> Stack:
    """Mongrel2 plus ``workers`` do-nothing pyzmq handlers (``bench/canned_handler.py``)."""
    chroot = workdir / "m2-canned"
    ends = Endpoints.on_free_ports()
    how = f"mongrel2 + {workers} canned pyzmq handlers (no WSGI, no gevent)"
    stack = Stack("m2-canned", app, "", how)
    port = start_mongrel2(stack, chroot, ends.conf())
    stack.url = url_for(port, app)
    argv = [sys.executable, "-m", f"{PACKAGE}.canned_handler", "--send-spec", ends.send_spec]
    argv += ["--recv-spec", ends.recv_spec, "--app", app, "--chroot", str(chroot)]
    for i in range(workers):
        stack.start("worker", argv, workdir / f"canned-{i}.log")
    return stack


def zmq_worker_argv(
    python: str, app: str, ends: Endpoints, chroot: Path, relay_spec: str
) -> list[str]:
    """``m2bridge serve`` of a Mongrel2 stack: it takes requests from the relay at
    ``relay_spec`` and replies straight to Mongrel2."""
    argv = [python, "-m", "m2bridge", "serve", WORKLOADS[app].app, "--relay", relay_spec]
    argv += ["--recv-spec", ends.recv_spec, "--m2-chroot", str(chroot), "--log-level", "warning"]
    return argv


def relay_argv(python: str, ends: Endpoints, relay_spec: str) -> list[str]:
    """``m2bridge relay`` between Mongrel2's PUSH and workers connecting at ``relay_spec``."""
    argv = [python, "-m", "m2bridge", "relay", "--send-spec", ends.send_spec]
    argv += ["--bind", relay_spec, "--log-level", "warning"]
    return argv


def start_zmq_direct(app: str, workers: int, workdir: Path) -> Stack:
    """``m2-zmq`` without the supervisor: Mongrel2, ``m2bridge relay`` and ``workers``
    ``m2bridge serve --relay`` processes, started directly."""
    name = "m2-zmq"
    chroot = workdir / name
    ends = Endpoints.on_free_ports()
    how = f"mongrel2 + `m2bridge relay` + {workers} x `m2bridge serve` started directly"
    stack = Stack(name, app, "", how + " (no supervisor)")
    port = start_mongrel2(stack, chroot, ends.conf())
    stack.url = url_for(port, app)
    spec = f"ipc://{workdir / (name + '.ipc')}"
    stack.start("relay", relay_argv(sys.executable, ends, spec), workdir / f"{name}-relay.log")
    argv = zmq_worker_argv(sys.executable, app, ends, chroot, spec)
    for i in range(workers):
        stack.start("worker", argv, workdir / f"{name}-{i}.log")
    return stack


def start_fd_direct(app: str, workers: int, workdir: Path) -> Stack:
    """One listening socket shared by ``workers`` ``m2bridge serve --fd N`` processes."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    how = f"{workers} x `m2bridge serve --fd` on one socket bound by the bench (no supervisor)"
    stack = Stack("fd", app, url_for(port, app), how)
    argv = [sys.executable, "-m", "m2bridge", "serve", WORKLOADS[app].app, "--fd", str(fd)]
    argv += ["--log-level", "warning"]
    try:
        for i in range(workers):
            stack.start("worker", argv, workdir / f"fd-{i}.log", pass_fds=(fd,))
    finally:
        listener.close()
    return stack
