"""Run the real ``mongrel2`` binary: its chroot layout, stale pid files, argv and readiness.

Used by the supervisor's ``mongrel2`` watcher and by the test harness, so both start Mongrel2
the same way. Facts relied on (Mongrel2 1.12.2): the chroot needs ``run/``, ``logs/`` and the
``upload.temp_store`` directory; a pid file naming any live process blocks start-up; start-up
takes about 0.5 s; ``server.daemonize=0`` keeps it in the foreground.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from m2bridge.errors import ConfigError

log = logging.getLogger("m2bridge.supervisor.mongrel2")

CHROOT_DIRS = ("run", "logs", "tmp")
PID_FILE = "run/mongrel2.pid"
ERROR_LOG = "logs/error.log"
ERROR_TAG = "[ERROR]"
#: The most bytes of the error log read to explain an exit.
ERROR_LOG_TAIL = 256 * 1024
#: The most error-log lines of one run copied to the supervisor log when Mongrel2 exits.
ERRORS_SHOWN = 10
#: What Mongrel2 logs after the real error on the way out (never the reason itself).
_TRAILERS = frozenset({"Exiting due to error.", "Aborting since can't load server."})
_ERROR_LINE = re.compile(
    r"\[ERROR\]\s*(?:\((?:[^)]*?errno:\s*(?P<errno>[^)]*))?\)\s*)?(?P<message>.*)"
)


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


def describe_exit(chroot: Path, returncode: int, errors: Sequence[str] | None = None) -> str:
    """A one-line reason for a mongrel2 exit, in Mongrel2's words.

    Args:
        errors: Mongrel2's ``[ERROR]`` lines of the run that ended, oldest first (what it
            printed, then what it logged); None: the ``[ERROR]`` lines of its whole error log.
    """
    if errors is None:
        errors = error_log_errors(chroot)
    return f"mongrel2 exited with status {returncode}: {exit_reason(errors)}"


def exit_reason(errors: Sequence[str]) -> str:
    """The telling one of Mongrel2's ``[ERROR]`` lines: the last that is not a generic trailer
    such as "Exiting due to error.", without its date and source location (its errno kept)."""
    reasons = [_error_message(line) for line in errors if ERROR_TAG in line]
    telling = [r for r in reasons if r not in _TRAILERS] or reasons
    return telling[-1] if telling else "no error logged"


def _error_message(line: str) -> str:
    """``DATE [ERROR] (src/x.c:1: errno: E) message`` -> ``message (E)``."""
    match = _ERROR_LINE.search(line)
    assert match is not None  # every part after the tag is optional: any [ERROR] line matches
    message, errno = match["message"].strip(), (match["errno"] or "").strip()
    return f"{message} ({errno})" if errno and errno != "None" else message


def error_log_size(chroot: Path) -> int:
    """The size of the chroot's ``logs/error.log`` now (0 if there is none)."""
    try:
        return (chroot / ERROR_LOG).stat().st_size
    except OSError:
        return 0


def error_log_errors(chroot: Path, offset: int = 0) -> list[str]:
    """The ``[ERROR]`` lines Mongrel2 logged after byte ``offset`` of its error log (the file is
    read from its last ``ERROR_LOG_TAIL`` bytes at most: a debug build logs a lot)."""
    try:
        with open(chroot / ERROR_LOG, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            start = offset if offset <= size else 0  # shrunk: rotated or truncated
            start = max(start, size - ERROR_LOG_TAIL)
            file.seek(start)
            data = file.read(size - start)
    except OSError:
        return []
    lines = data.decode("latin-1").splitlines()
    if 0 < start != offset and lines:
        lines = lines[1:]  # cut by the tail limit: not a whole line
    return [line for line in lines if ERROR_TAG in line]


def chroot_of(path: str | os.PathLike[str]) -> Path:
    """Resolve a chroot setting (relative to the directory Mongrel2 starts in)."""
    return Path(path).resolve()
