"""One supervised process: a fresh command started with Popen, in its own session.

Never ``os.fork()`` a worker: each process is a new interpreter/command (``subprocess``), its
own process group (so ``Kill`` reaches its children too and a terminal's Ctrl-C reaches only
the supervisor), with output piped to the supervisor's relay.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from m2bridge.supervisor.output import LineRelay
from m2bridge.supervisor.plan import ProcessView


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
        self.relay: LineRelay | None = None

    @classmethod
    def spawn(cls, command: Command, slot: Slot, now: float, sink: BinaryIO) -> WorkerProcess:
        """Start ``command``.

        Raises:
            OSError: the command cannot be executed (missing binary, bad cwd, permissions).
        """
        popen = subprocess.Popen(
            command.argv,
            env=dict(command.env),
            cwd=command.cwd,
            pass_fds=command.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
