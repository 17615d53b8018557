"""Systemd socket activation: which listening sockets systemd passed (``sd_listen_fds``).

systemd starts a socket-activated service with its sockets as file descriptors 3, 4, ...
and says so in the environment: ``LISTEN_FDS`` (how many), ``LISTEN_PID`` (the process they
are meant for: a child that inherits the environment must not take them) and, optionally,
``LISTEN_FDNAMES`` (colon-separated names, from ``FileDescriptorName=`` in the .socket unit).
``m2bridge serve --fd systemd [--fd-name NAME]`` serves on one of them
(examples/systemd/m2bridge-fd.socket). This module only reads and edits an environment
mapping; the caller does the I/O.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from m2bridge.errors import ConfigError

#: The first file descriptor systemd passes (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3
#: The variables of the protocol, removed once read so that children do not take the sockets.
VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def listen_fds(environ: Mapping[str, str], pid: int) -> list[int]:
    """The file descriptors systemd passed to process ``pid`` (none if not for this pid).

    Raises:
        ConfigError: ``LISTEN_FDS`` or ``LISTEN_PID`` is not a number.
    """
    count_text = environ.get("LISTEN_FDS")
    if count_text is None or environ.get("LISTEN_PID") is None:
        return []
    for name in ("LISTEN_FDS", "LISTEN_PID"):
        if not environ[name].isdigit():
            raise ConfigError(f"${name} is {environ[name]!r}, not a number")
    if int(environ["LISTEN_PID"]) != pid:
        return []
    return list(range(LISTEN_FDS_START, LISTEN_FDS_START + int(count_text)))


def listen_fd_names(environ: Mapping[str, str], pid: int) -> dict[str, int]:
    """The passed file descriptors by name (``LISTEN_FDNAMES``; systemd's default name is
    "unknown"); a name given twice keeps its first descriptor."""
    fds = listen_fds(environ, pid)
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    if len(names) != len(fds):
        names = ["unknown"] * len(fds)
    by_name: dict[str, int] = {}
    for name, fd in zip(names, fds, strict=True):
        by_name.setdefault(name, fd)
    return by_name


def select_fd(environ: Mapping[str, str], pid: int, name: str | None = None) -> int:
    """The descriptor to serve on: the first one passed, or the one called ``name``.

    Raises:
        ConfigError: systemd passed no socket to ``pid``, or none called ``name``.
    """
    fds = listen_fds(environ, pid)
    if not fds:
        raise ConfigError(
            "--fd systemd: no socket passed by systemd "
            "($LISTEN_FDS unset, or $LISTEN_PID is not this process)"
        )
    if name is None:
        return fds[0]
    by_name = listen_fd_names(environ, pid)
    if name not in by_name:
        known = ", ".join(sorted(by_name))
        raise ConfigError(f"--fd-name {name}: systemd passed no socket of that name ({known})")
    return by_name[name]


def forget(environ: MutableMapping[str, str]) -> None:
    """Remove the protocol's variables (``sd_listen_fds(1)``): children must not take them."""
    for name in VARIABLES:
        environ.pop(name, None)
