"""systemd's sd_notify protocol for the supervisor: readiness, status, reloads and the watchdog.

Under ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (a path, or an abstract socket written
``@name``); each notification is one datagram of ``KEY=VALUE`` lines. The supervisor sends
``READY=1`` once every watcher runs as asked, ``STATUS=`` when its one-line summary changes,
``RELOADING=1`` (with ``MONOTONIC_USEC=``) when a reload starts and ``READY=1`` when it has
settled, ``STOPPING=1`` when it quits, and ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from its
loop. Without ``NOTIFY_SOCKET`` every call does nothing; a failed send is logged once and
never raised. Children never inherit these variables (``child_environment``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping

log = logging.getLogger("m2bridge.supervisor")

#: What systemd gives the service alone: a child that inherited them could notify for it.
SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
#: Seconds a notification may wait for room in the receiver's queue (the loop must not hang).
SEND_TIMEOUT = 0.2
#: Longest STATUS= text sent (systemctl shows one line).
STATUS_MAX = 200

Sender = Callable[[bytes], None]


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables that let a process notify systemd for the service."""
    return {key: value for key, value in env.items() if key not in SERVICE_VARIABLES}


def socket_address(value: str) -> str | None:
    """The ``AF_UNIX`` address of a ``NOTIFY_SOCKET`` value: a path as is, ``@name`` as the
    abstract ``\\0name``; None for anything else (a relative path, ``vsock:``...)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half of ``WATCHDOG_USEC``), or None: no watchdog,
    a bad value, or one meant for another process (``WATCHDOG_PID``)."""
    usec, for_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if for_pid and for_pid != str(pid):
        return None
    if not usec.isdigit() or int(usec) == 0:
        log.warning("WATCHDOG_USEC=%r is not a positive integer: no watchdog pings", usec)
        return None
    return int(usec) / 2e6


def message(fields: Iterable[tuple[str, str]]) -> bytes:
    """One datagram: ``KEY=VALUE`` lines (a value never spans lines)."""
    lines = (f"{key}={' '.join(value.splitlines())}" for key, value in fields)
    return "\n".join(lines).encode()


def status_line(watchers: int, processes: int, problems: list[str], quitting: bool) -> str:
    """The STATUS= summary: ``3 watchers, 4 processes, healthy`` (or the first problem)."""
    counts = f"{watchers} watcher{'s' * (watchers != 1)}, {processes} process"
    counts += "es" * (processes != 1)
    if quitting:
        text = f"stopping: {counts} left"
    elif problems:
        text = f"{counts}: {problems[0]}"
    else:
        text = f"{counts}, healthy"
    return text if len(text) <= STATUS_MAX else text[: STATUS_MAX - 3] + "..."


class DatagramSender:
    """Sends datagrams to one Unix socket address; logs the first failure, never raises."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.failed = False
        self.sock: socket.socket | None = None
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.settimeout(SEND_TIMEOUT)
        except OSError as exc:
            self._failure(exc)

    def __call__(self, data: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, self.address)
        except OSError as exc:  # TimeoutError too: the receiver does not read
            self._failure(exc)

    def _failure(self, exc: OSError) -> None:
        shown = self.address.replace("\0", "@")
        if not self.failed:
            log.warning("cannot notify systemd at %s: %s (only logged once)", shown, exc)
        self.failed = True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Notifier:
    """The supervisor's side of sd_notify: what it tells systemd, and when.

    Phases: ``starting`` until the first ``READY=1``, then ``ready``; ``reloading`` from
    ``RELOADING=1`` until the reload settles (``READY=1`` again); ``stopping`` at the end.
    """

    def __init__(self, send: Sender | None = None, watchdog: float | None = None) -> None:
        self.send = send
        self.watchdog = watchdog if send is not None else None
        self.phase = "starting"
        self.last_status = ""
        self.next_ping = -math.inf

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """From ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``/``WATCHDOG_PID`` (default: os.environ);
        a no-op notifier when ``NOTIFY_SOCKET`` is unset."""
        environ = os.environ if environ is None else environ
        value = environ.get("NOTIFY_SOCKET", "")
        if not value:
            return cls()
        address = socket_address(value)
        if address is None:
            log.warning("NOTIFY_SOCKET=%r is not a socket path or @name: not notifying", value)
            return cls()
        notifier = cls(DatagramSender(address), watchdog_interval(environ, os.getpid()))
        log.info(
            "notifying systemd at %s%s",
            value,
            f"; watchdog ping every {notifier.watchdog:g} s" if notifier.watchdog else "",
        )
        return notifier

    @property
    def enabled(self) -> bool:
        return self.send is not None

    def notify(self, *fields: tuple[str, str]) -> None:
        if self.send is not None and fields:
            self.send(message(fields))

    def update(self, now: float, as_asked: bool, settled: bool, status: str) -> None:
        """Once per loop turn: the watchdog ping when due, STATUS= when ``status`` changed
        (``reloading: `` before it during a reload), READY=1 the first time the stack runs
        ``as_asked`` and when a reload has ``settled``."""
        fields = []
        if (self.phase == "starting" and as_asked) or (self.phase == "reloading" and settled):
            self.phase = "ready"
            fields.append(("READY", "1"))
        if self.phase == "reloading":
            status = f"reloading: {status}"
        if status != self.last_status:
            self.last_status = status
            fields.append(("STATUS", status))
        self.notify(*fields)
        self.ping(now)

    def reloading(self) -> None:
        """RELOADING=1: a reload (HUP, ``ctl reload``) starts; ignored before the first
        READY=1 or while stopping."""
        if self.phase != "ready":
            return
        self.phase = "reloading"
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify(("RELOADING", "1"), ("MONOTONIC_USEC", str(usec)))

    def stopping(self) -> None:
        """STOPPING=1, once."""
        if self.phase != "stopping":
            self.phase = "stopping"
            self.notify(("STOPPING", "1"))

    def watchdog_due(self, now: float) -> bool:
        """Whether a WATCHDOG=1 is due at ``now`` (never without a watchdog)."""
        return self.watchdog is not None and now >= self.next_ping

    def ping(self, now: float) -> None:
        """WATCHDOG=1 when due (every half ``WATCHDOG_USEC``)."""
        if self.watchdog is not None and self.watchdog_due(now):
            self.next_ping = now + self.watchdog
            self.notify(("WATCHDOG", "1"))

    def wait_limit(self, now: float) -> float:
        """The longest the loop may wait before its next turn: until the next ping is due."""
        if self.watchdog is None:
            return math.inf
        return max(0.0, self.next_ping - now)

    def close(self) -> None:
        close = getattr(self.send, "close", None)
        if close is not None:
            close()
