"""The supervisor's runtime directory: private (0700, ours), locked, and its pid file.

It holds the control socket ``m2bridge.ctl``, the workers' ``stats/`` files, a lock that
keeps a second supervisor of the same stack from stealing the control socket, and the
``children`` file: the processes running under the supervisor (pid and kernel start time), so
that a supervisor starting after one that was killed ends whatever that one left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from m2bridge.errors import ConfigError

LOCK_FILE = "supervisor.lock"
CHILDREN_FILE = "children"
#: Seconds to wait for stale processes to die after their SIGKILL (they free ports, pid files).
STALE_KILL_TIMEOUT = 5.0


def prepare_rundir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` mode 0700 (and missing parents) and check that nobody else controls it.

    Raises:
        ConfigError: it is not a directory, a symlink, or owned by another user; or its
            parent can be changed by another user.
    """
    rundir = Path(path)
    try:
        rundir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_parent(rundir.parent)
        rundir.mkdir(mode=0o700, exist_ok=True)
        info = rundir.lstat()
    except OSError as exc:
        raise ConfigError(f"runtime directory {rundir}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"runtime directory {rundir}: not a directory (or a symlink)")
    if info.st_uid != os.getuid():
        raise ConfigError(f"runtime directory {rundir}: owned by uid {info.st_uid}")
    rundir.chmod(0o700)
    (rundir / "stats").mkdir(mode=0o700, exist_ok=True)
    return rundir


def _check_parent(parent: Path) -> None:
    """Only we (or root) may rename entries in the parent, unless it is sticky like /tmp."""
    info = parent.stat()
    if info.st_uid not in (os.getuid(), 0):
        raise ConfigError(f"runtime directory {parent}: owned by uid {info.st_uid}")
    if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(f"runtime directory {parent}: writable by other users")


def lock_rundir(rundir: Path) -> int:
    """Take the supervisor lock; returns the fd to keep open (closing it releases the lock).

    Raises:
        ConfigError: another supervisor holds it.
    """
    fd = os.open(rundir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"another supervisor is running with runtime directory {rundir}"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def write_pid_file(path: Path) -> None:
    """Write our pid; refuse when the file names another live process.

    Raises:
        ConfigError: the pid file names a live process.
    """
    with contextlib.suppress(OSError, ValueError):
        other = int(path.read_text().strip())
        if other != os.getpid() and _alive(other):
            raise ConfigError(f"pid file {path} names a running process ({other})")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it is still ours."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_time(pid: int) -> int | None:
    """The kernel start time of a live process (it tells a reused pid apart), else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="latin-1") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def record_children(rundir: Path, pids: Iterable[int]) -> None:
    """Write ``children``: one ``PID START_TIME`` line per running child (atomically)."""
    lines = [f"{pid} {started}\n" for pid in pids if (started := start_time(pid)) is not None]
    path = rundir / CHILDREN_FILE
    if not lines:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(CHILDREN_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "w") as out:  # private like everything in the rundir
        out.write("".join(lines))
    tmp.replace(path)


def kill_stale_children(rundir: Path) -> list[int]:
    """SIGKILL the process group of every child a previous supervisor recorded that still runs
    (same pid and start time), wait until they are gone, and forget them; returns their pids."""
    path = rundir / CHILDREN_FILE
    stale: list[int] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                pid, started = (int(field) for field in line.split())
                if start_time(pid) == started:
                    stale.append(pid)
    for pid in stale:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STALE_KILL_TIMEOUT
    while any(start_time(pid) is not None for pid in stale) and time.monotonic() < deadline:
        time.sleep(0.02)
    path.unlink(missing_ok=True)
    return stale
