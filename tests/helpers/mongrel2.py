"""Shared test harness: free ports, a Mongrel2 config, and the real mongrel2 run in a tmp dir.

Every integration test that talks to Mongrel2 goes through ``Mongrel2Server``: it writes a
config, loads it with the real ``m2sh`` (or a database given by the caller), starts the real
``mongrel2`` in the foreground on 127.0.0.1, waits until it listens, and stops it by PID.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from m2bridge.supervisor import mongrel2


def require_mongrel2() -> None:
    """Fail (never skip) when mongrel2/m2sh are missing: integration tests need the real binary."""
    missing = [name for name in ("mongrel2", "m2sh") if not _which(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run `bash scripts/setup` "
            "(apt-get install mongrel2-core)",
            pytrace=False,
        )


def _which(name: str) -> bool:
    try:
        mongrel2.find_binary(name)
    except Exception:
        return False
    return True


#: Ports ``free_port`` draws from: below the kernel's ephemeral range, so that no outgoing
#: connection (thousands a second in the load tests) takes the port between the draw and the
#: bind of whoever it is for (Mongrel2's handler sockets, say).
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_DRAWN = 10_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to right now, outside the ephemeral range
    when there is room below it (else one the kernel picks)."""
    try:
        first_ephemeral = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 0
    for _ in range(100 if first_ephemeral > _LOWEST_DRAWN + 1000 else 0):
        port = random.randrange(_LOWEST_DRAWN, first_ephemeral)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HandlerSpec:
    """One Mongrel2 Handler route, with endpoints on free ports."""

    route: str
    protocol: str = "json"
    send_ident: str = field(default_factory=lambda: str(uuid.uuid4()))
    send_port: int = field(default_factory=free_port)
    recv_port: int = field(default_factory=free_port)
    recv_ident: str = ""

    @property
    def send_spec(self) -> str:
        return f"tcp://127.0.0.1:{self.send_port}"

    @property
    def recv_spec(self) -> str:
        return f"tcp://127.0.0.1:{self.recv_port}"

    def conf(self) -> str:
        return (
            f"Handler(send_spec='{self.send_spec}', send_ident='{self.send_ident}', "
            f"recv_spec='{self.recv_spec}', recv_ident='{self.recv_ident}', "
            f"protocol='{self.protocol}')"
        )


def make_conf(
    port: int,
    handlers: list[HandlerSpec],
    settings: Mapping[str, object] | None = None,
    extra_routes: Mapping[str, str] | None = None,
) -> str:
    """An m2sh config text: one server on 127.0.0.1:port, host localhost, the given routes."""
    routes = {h.route: h.conf() for h in handlers}
    routes.update(extra_routes or {})
    route_text = ",\n        ".join(f"'{path}': {target}" for path, target in routes.items())
    merged: dict[str, object] = {
        "server.daemonize": 0,
        "upload.temp_store": "/tmp/upload.XXXXXX",
    }
    merged.update(settings or {})
    setting_text = ", ".join(f"'{k}': {_literal(v)}" for k, v in merged.items())
    return f"""
main = Server(
    uuid="m2bridge-test", access_log="/logs/access.log", error_log="/logs/error.log",
    chroot="./", pid_file="/run/mongrel2.pid", default_host="localhost", name="main",
    bind_addr="127.0.0.1", port={port},
    hosts=[Host(name="localhost", routes={{
        {route_text}
    }})]
)
settings = {{{setting_text}}}
servers = [main]
"""


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int) else f"'{value}'"


def m2sh_load(conf: Path, db: Path) -> None:
    """Load ``conf`` into ``db`` with the real m2sh; fail on any [ERROR] (it always exits 0)."""
    env = {**os.environ, "LOGNAME": os.environ.get("LOGNAME", "m2bridge")}
    result = subprocess.run(
        [mongrel2.find_binary("m2sh"), "load", "-config", str(conf), "-db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    if "[ERROR]" in result.stderr or not db.exists():
        raise AssertionError(f"m2sh load failed:\n{result.stderr}")


@dataclass
class Mongrel2Server:
    """A running mongrel2 (see ``run_mongrel2``)."""

    chroot: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.chroot / "logs" / "error.log"
        return path.read_text("latin-1") if path.exists() else ""


@contextlib.contextmanager
def run_mongrel2(
    chroot: Path,
    handlers: list[HandlerSpec],
    settings: Mapping[str, object] | None = None,
    extra_routes: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Mongrel2Server]:
    """Write a config, m2sh-load it, run mongrel2 from ``chroot`` and stop it afterwards."""
    require_mongrel2()
    port = port or free_port()
    chroot.mkdir(parents=True, exist_ok=True)
    conf = chroot / "mongrel2.conf"
    conf.write_text(make_conf(port, handlers, settings, extra_routes))
    db = chroot / "config.sqlite"
    db.unlink(missing_ok=True)
    m2sh_load(conf, db)
    with start_mongrel2(chroot, db, "m2bridge-test", port) as server:
        yield server


@contextlib.contextmanager
def start_mongrel2(chroot: Path, db: Path, server_uuid: str, port: int) -> Iterator[Mongrel2Server]:
    """Start mongrel2 on an existing database; always stop it by PID."""
    mongrel2.prepare_chroot(chroot)
    log_path = chroot / "mongrel2.stderr"
    with open(log_path, "wb") as stderr:
        proc = subprocess.Popen(
            mongrel2.mongrel2_argv(db, server_uuid),
            cwd=chroot,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    server = Mongrel2Server(chroot, port, proc)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop_process(proc)


def _wait_ready(server: Mongrel2Server) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(mongrel2.describe_exit(server.chroot, server.proc.returncode))
        try:
            mongrel2.wait_listening("127.0.0.1", server.port, timeout=0.2)
        except TimeoutError:
            continue
        # The socket is bound almost at once; handlers are wired after ~0.5 s.
        time.sleep(0.6)
        return
    raise AssertionError("mongrel2 did not start listening within 10 s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM a child by PID, SIGKILL it after ``timeout``, and reap it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


@contextlib.contextmanager
def port_held(port: int) -> Iterator[socket.socket]:
    """Listen on 127.0.0.1:``port`` for the block, so a server started there clashes."""
    squatter = socket.socket()
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield squatter
    finally:
        squatter.close()
