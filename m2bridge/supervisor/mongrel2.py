"""Run the real ``mongrel2`` binary: its chroot layout, stale pid files, argv and readiness.

Used by the supervisor's ``mongrel2`` watcher and by the test harness, so both start Mongrel2
the same way. Facts relied on (Mongrel2 1.12.2): the chroot needs ``run/``, ``logs/`` and the
``upload.temp_store`` directory; a pid file naming any live process blocks start-up; start-up
takes about 0.5 s; ``server.daemonize=0`` keeps it in the foreground.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from pathlib import Path

from m2bridge.errors import ConfigError

log = logging.getLogger("m2bridge.supervisor.mongrel2")

CHROOT_DIRS = ("run", "logs", "tmp")
PID_FILE = "run/mongrel2.pid"


def find_binary(name: str = "mongrel2") -> str:
    """Return the path of ``mongrel2`` (or ``m2sh``).

    Raises:
        ConfigError: the binary is not installed (Debian package ``mongrel2-core``).
    """
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found on PATH: install Debian's mongrel2-core")
    return path


def prepare_chroot(chroot: Path, extra_dirs: tuple[str, ...] = ()) -> None:
    """Create the directories Mongrel2 needs inside its chroot and drop a stale pid file."""
    for name in (*CHROOT_DIRS, *extra_dirs):
        (chroot / name.strip("/")).mkdir(parents=True, exist_ok=True)
    remove_stale_pid_file(chroot)


def remove_stale_pid_file(chroot: Path) -> None:
    """Delete ``run/mongrel2.pid`` unless it names a live mongrel2 (any live pid blocks start)."""
    pid_file = chroot / PID_FILE
    try:
        pid = int(pid_file.read_text().strip() or "0")
    except (OSError, ValueError):
        pid = 0
    if pid and _is_running_mongrel2(pid):
        raise ConfigError(f"mongrel2 already running as pid {pid} ({pid_file})")
    pid_file.unlink(missing_ok=True)


def _is_running_mongrel2(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="latin-1") as stat:
            fields = stat.read().rsplit(")", 1)
    except OSError:
        return False
    state = fields[1].split()[0] if len(fields) == 2 else "Z"
    comm = fields[0].partition("(")[2]
    return state != "Z" and "mongrel2" in comm


def mongrel2_argv(db: Path, server_uuid: str) -> list[str]:
    """The command line that runs one server of a config database in the foreground."""
    return [find_binary("mongrel2"), str(db), server_uuid]


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts a TCP connection.

    Raises:
        TimeoutError: nothing listened within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


def describe_exit(chroot: Path, returncode: int) -> str:
    """A one-line reason for a mongrel2 exit, taken from the end of its error log."""
    error_log = chroot / "logs" / "error.log"
    lines: list[str] = []
    if error_log.exists():
        lines = [ln for ln in error_log.read_text("latin-1").splitlines() if "[ERROR]" in ln]
    reason = lines[-1].split("[ERROR]", 1)[1].strip() if lines else "no error logged"
    return f"mongrel2 exited with status {returncode}: {reason}"


def chroot_of(path: str | os.PathLike[str]) -> Path:
    """Resolve a chroot setting (relative to the directory Mongrel2 starts in)."""
    return Path(path).resolve()
