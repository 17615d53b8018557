"""The ``mongrel2`` watcher type: load the stack's Mongrel2 config and run the real binary.

A ``.conf`` is loaded into ``<rundir>/<watcher>.sqlite`` with ``mongrel2_conf`` (or ``m2sh load``
when that package is unavailable) at start and on each restart; a ``.sqlite`` is used as is.
The server must run in the foreground (``server.daemonize=0``), otherwise it would escape
supervision: such a config is refused. Mongrel2 cannot share its port, so a reload is a
stop-then-start (not rolling). Ready once it listens and has wired its handlers (~0.5 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from m2bridge.environment import Mongrel2Chroot
from m2bridge.errors import ConfigError
from m2bridge.supervisor import mongrel2, output
from m2bridge.supervisor.process import Command, WorkerProcess, describe_status
from m2bridge.supervisor.stack import WatcherSpec

log = logging.getLogger("m2bridge.supervisor")

#: Mongrel2 wires its handlers about 0.5 s after start (a fixed taskdelay(500)).
STARTUP_DELAY = 0.6


@dataclass(frozen=True)
class ServerRow:
    uuid: str
    name: str
    chroot: str
    bind_addr: str
    port: int
    control_port: str = ""  # "" : Mongrel2's default, ipc://run/control in its chroot


class Mongrel2Launcher:
    """Runs ``mongrel2 DB UUID`` from the watcher's working directory."""

    rolling = False

    def __init__(self, spec: WatcherSpec, rundir: Path) -> None:
        assert spec.mongrel2 is not None
        self.spec = spec
        self.source = Path(spec.mongrel2.config)
        self.db = database_of(spec, rundir)
        self.server: ServerRow | None = None
        self.chroot = Path(spec.working_dir)
        self.chroot_dirs: tuple[str, ...] = ()
        self.label = f"{spec.name}.1"
        self.error_log_offset = 0

    def prepare(self) -> None:
        """(Re)load the config and check it; the running server is not touched.

        Raises:
            ConfigError: the config does not load, names no such server, or would daemonize.
        """
        where = f"watchers.{self.spec.name}.config"
        if self.source.suffix == ".conf":
            load_conf(self.source, self.db, where)
        assert self.spec.mongrel2 is not None
        self.server = read_server(self.db, self.spec.mongrel2.server, where)
        settings = read_settings(self.db)
        if settings.get("server.daemonize") != "0":
            raise ConfigError(
                f"{where}: {self.source} must set server.daemonize to 0 in its settings "
                "(a daemonizing mongrel2 escapes the supervisor)"
            )
        self.chroot = chroot_of(self.spec, self.server)
        self.chroot_dirs = _temp_store_dirs(settings)

    def command(self, wid: int) -> Command:
        """The command; lays out the chroot first (the previous server has exited by now).

        Raises:
            ConfigError: the chroot's pid file names a live mongrel2.
        """
        if self.server is None:
            self.prepare()
        assert self.server is not None
        Path(self.spec.working_dir).mkdir(parents=True, exist_ok=True)
        mongrel2.prepare_chroot(self.chroot, self.chroot_dirs)
        # What this run adds to the error log (or prints) explains its exit: ``describe_exit``.
        self.label = f"{self.spec.name}.{wid}"
        self.error_log_offset = mongrel2.error_log_size(self.chroot)
        env = dict(os.environ) if self.spec.copy_env else {}
        env.update(self.spec.env)
        argv = tuple(mongrel2.mongrel2_argv(self.db, self.server.uuid))
        return Command(argv, env, self.spec.working_dir)

    def is_ready(self, process: WorkerProcess, now: float) -> bool:
        if process.age(now) < STARTUP_DELAY or self.server is None:
            return False
        host = self.server.bind_addr
        host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        try:
            mongrel2.wait_listening(host, self.server.port, timeout=0)
        except TimeoutError:
            return False
        return True

    def describe_exit(self, returncode: int) -> str:
        """Why Mongrel2 exited, in its own words: the telling ``[ERROR]`` line it printed (start-up
        errors such as a port clash come before it opens its error log) or logged in this run;
        this run's error-log errors are also copied to the supervisor log. A signal or a clean
        exit is said as such."""
        if returncode <= 0:
            return f"mongrel2 {describe_status(returncode)}"
        logged = mongrel2.error_log_errors(self.chroot, self.error_log_offset)
        for line in logged[-mongrel2.ERRORS_SHOWN :]:
            log.warning("%s error.log | %s", self.label, line)
        printed = [ln for ln in output.recent_lines(self.label) if mongrel2.ERROR_TAG in ln]
        return mongrel2.describe_exit(self.chroot, returncode, [*printed, *logged])


def database_of(spec: WatcherSpec, rundir: Path) -> Path:
    """The database a mongrel2 watcher runs: its ``.sqlite``, or where its ``.conf`` is loaded."""
    assert spec.mongrel2 is not None
    source = Path(spec.mongrel2.config)
    return rundir / f"{spec.name}.sqlite" if source.suffix == ".conf" else source


def chroot_of(spec: WatcherSpec, server: ServerRow) -> Path:
    """The server's chroot, resolved against the watcher's working directory (Mongrel2's cwd)."""
    return (Path(spec.working_dir) / (server.chroot or ".")).resolve()


def served_chroots(peers: tuple[WatcherSpec, ...], rundir: Path) -> list[Mongrel2Chroot]:
    """Where each of the stack's mongrel2 watchers runs its server (after their ``prepare``).

    Raises:
        ConfigError: a watcher's database cannot be read or lacks its server.
    """
    found = []
    for spec in peers:
        assert spec.mongrel2 is not None
        where = f"watchers.{spec.name}.config"
        server = read_server(database_of(spec, rundir), spec.mongrel2.server, where)
        chroot = str(chroot_of(spec, server))
        found.append(Mongrel2Chroot(server.uuid, spec.mongrel2.config, chroot))
    return found


def load_conf(conf: Path, db: Path, where: str) -> None:
    """Write ``conf`` into the database ``db`` (replaced atomically).

    Raises:
        ConfigError: the config is invalid; the message names ``where`` and the file's line.
    """
    try:
        import mongrel2_conf
    except ImportError:
        _m2sh_load(conf, db, where)
        return
    try:
        mongrel2_conf.write_config(db, mongrel2_conf.load_config(conf), how=conf.name)
    except mongrel2_conf.ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _m2sh_load(conf: Path, db: Path, where: str) -> None:
    """Fallback: the real ``m2sh load`` (it always exits 0: look for [ERROR] instead)."""
    tmp = db.with_name(db.name + ".loading")
    tmp.unlink(missing_ok=True)
    env = {**os.environ, "LOGNAME": os.environ.get("LOGNAME", "m2bridge")}
    argv = [mongrel2.find_binary("m2sh"), "load", "-config", str(conf), "-db", str(tmp)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    if errors or not tmp.exists():
        tmp.unlink(missing_ok=True)
        detail = errors[0] if errors else result.stderr.strip()
        raise ConfigError(f"{where}: m2sh cannot load {conf}: {detail}")
    tmp.replace(db)


def read_server(db: Path, wanted: str | None, where: str) -> ServerRow:
    """The server named (or with uuid) ``wanted``; the only one when ``wanted`` is None.

    Raises:
        ConfigError: no such server, or several and none named.
    """
    rows = _query(db, "SELECT uuid, name, chroot, bind_addr, port, control_port FROM server", where)
    servers = [
        ServerRow(str(u), str(n or ""), str(c or ""), str(b or ""), int(p), str(cp or ""))
        for u, n, c, b, p, cp in rows
    ]
    matches = [s for s in servers if wanted in (s.uuid, s.name)] if wanted else servers
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(f"{s.name} ({s.uuid})" for s in servers) or "none"
    if wanted:
        raise ConfigError(f"{where}: no server {wanted!r} in {db} (servers: {names})")
    raise ConfigError(f"{where}: {db} has several servers, set server = NAME (servers: {names})")


def listener_clashes(servers: dict[str, ServerRow]) -> list[tuple[str, str]]:
    """``(watcher, problem)`` for each Mongrel2 watcher whose server would listen where an
    earlier one's does (a config may hold several servers on one port: Mongrel2 runs one per
    process; a stack cannot start two on one address)."""
    from mongrel2_conf.listeners import clashes

    names = {id(server): name for name, server in servers.items()}
    return [
        (
            names[id(second)],
            f"watchers.{names[id(second)]}: its server would listen on "
            f"{second.bind_addr}:{second.port}, as watchers.{names[id(first)]}'s does "
            "(two Mongrel2 servers cannot share it)",
        )
        for first, second in clashes(list(servers.values()))
    ]


def read_settings(db: Path) -> dict[str, str]:
    rows = _query(db, "SELECT key, value FROM setting", "settings")
    return {str(key): str(value) for key, value in rows}


def _query(db: Path, sql: str, where: str) -> list[tuple[Any, ...]]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return list(conn.execute(sql))
    except sqlite3.Error as exc:
        raise ConfigError(f"{where}: cannot read {db}: {exc}") from exc


def _temp_store_dirs(settings: dict[str, str]) -> tuple[str, ...]:
    store = settings.get("upload.temp_store")
    if not store:
        return ()
    parent = str(PurePosixPath(store).parent)
    return () if parent in ("/", ".") else (parent,)
