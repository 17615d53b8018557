"""One supervised process: a fresh command started with Popen, in its own session.

Never ``os.fork()`` a worker: each process is a new interpreter/command (``subprocess``), its
own process group (so ``Kill`` reaches its children too and a terminal's Ctrl-C reaches only
the supervisor), with output piped to the supervisor's relay. On Linux each child gets the
parent-death signal SIGKILL before it executes its command, so none outlives a supervisor that
was killed (``kill -9``); the supervisor spawns from its main thread only, whose exit is the
process's exit (the kernel sends the signal when the spawning *thread* ends).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from m2bridge.supervisor.notify import child_environment
from m2bridge.supervisor.output import LineRelay
from m2bridge.supervisor.plan import ProcessView

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once here: the child only calls it between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGKILL when this process dies (None off Linux).

    Runs in the child after ``setsid``: if this process already died in between, the child
    has been re-parented and kills itself rather than run orphaned.
    """
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@dataclass(frozen=True)
class Command:
    """Everything needed to start one process."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "."
    pass_fds: tuple[int, ...] = ()
    stats_file: str | None = None


@dataclass(frozen=True)
class Slot:
    """Who a process is: its watcher, stable slot id and code generation."""

    watcher: str
    wid: int
    generation: int = 0

    @property
    def label(self) -> str:
        return f"{self.watcher}.{self.wid}"


class WorkerProcess:
    """A running child and what the supervisor knows about it."""

    def __init__(self, popen: subprocess.Popen[bytes], slot: Slot, started_at: float) -> None:
        self.popen = popen
        self.slot = slot
        self.started_at = started_at
        self.stats_file: Path | None = None
        self.max_requests = 0
        self.ready = False
        self.retire = False
        self.stopping_since: float | None = None
        self.killed = False
        self.expected_exit = False
        self.operator_signals: set[int] = set()
        self.relay: LineRelay | None = None

    @classmethod
    def spawn(cls, command: Command, slot: Slot, now: float, sink: BinaryIO) -> WorkerProcess:
        """Start ``command``.

        Raises:
            OSError: the command cannot be executed (missing binary, bad cwd, permissions).
        """
        popen = subprocess.Popen(
            command.argv,
            env=child_environment(command.env),  # never NOTIFY_SOCKET, WATCHDOG_*
            cwd=command.cwd,
            pass_fds=command.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # safe: the supervisor runs no Python thread
        )
        process = cls(popen, slot, now)
        process.stats_file = Path(command.stats_file) if command.stats_file else None
        if popen.stdout is not None:
            fd = os.dup(popen.stdout.fileno())
            popen.stdout.close()
            process.relay = LineRelay(fd, f"{slot.label} | ", sink)
        return process

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def wid(self) -> int:
        return self.slot.wid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def age(self, now: float) -> float:
        return now - self.started_at

    def poll(self) -> int | None:
        """The exit status once the process ended (reaped by Popen, never by waitpid(-1))."""
        returncode = self.popen.poll()
        if returncode is not None:
            self._finish()
        return returncode

    def _finish(self) -> None:
        # The group outlives its leader only through leftover children: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.relay is not None:
            self.relay.read()
            self.relay.close()

    def send_signal(self, signum: int) -> None:
        """Deliver ``signum`` to the process (not its group); a gone process is ignored."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def killed_by_operator(self) -> bool:
        """Whether it ended by a signal the operator sent it (``ctl signal``, USR1 forwarded)."""
        return self.returncode is not None and -self.returncode in self.operator_signals

    def stop(self, signum: int, now: float) -> None:
        """Ask the process to finish (graceful); the plan kills it after the timeout."""
        if self.stopping_since is None:
            self.stopping_since = now
        self.expected_exit = True
        self.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the whole process group."""
        self.killed = True
        self.expected_exit = True
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def view(self) -> ProcessView:
        """The snapshot ``plan.reconcile`` works on."""
        return ProcessView(
            pid=self.pid,
            wid=self.slot.wid,
            generation=self.slot.generation,
            started_at=self.started_at,
            ready=self.ready,
            stopping_since=self.stopping_since,
            killed=self.killed,
            retire=self.retire,
        )


def describe_status(returncode: int) -> str:
    """``exited with status 1`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


def signal_number(name: str) -> int:
    """``TERM`` / ``SIGTERM`` / ``15`` -> 15.

    Raises:
        ValueError: not a signal name or number.
    """
    text = name.strip().upper()
    if text.isdigit():
        return int(signal.Signals(int(text)))
    try:
        return int(signal.Signals["SIG" + text.removeprefix("SIG")])
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None
