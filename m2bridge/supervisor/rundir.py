"""The supervisor's runtime directory: private (0700, ours), locked, and its pid file.

It holds the control socket ``m2bridge.ctl``, the workers' ``stats/`` files and a lock that
keeps a second supervisor of the same stack from stealing the control socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from m2bridge.errors import ConfigError

LOCK_FILE = "supervisor.lock"


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
