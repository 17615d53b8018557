"""How a watcher starts its processes: the ``Launcher`` interface and the plain command launcher.

A launcher turns a watcher spec and a slot id into a ``Command`` (substituted argv, env,
working dir, inherited socket fds) and decides when a new process is ready to serve. A plain
command learns where the stack's Mongrel2 servers run (``M2BRIDGE_MONGREL2_CHROOTS``). The
``mongrel2`` watcher type has its own launcher (``mongrel2_watcher.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from m2bridge import environment
from m2bridge.supervisor import template
from m2bridge.supervisor.process import Command, WorkerProcess, describe_status
from m2bridge.supervisor.stack import WatcherSpec, substitutions
from m2bridge.supervisor.stats import read_counters

log = logging.getLogger("m2bridge.supervisor")


class Launcher(Protocol):
    """What a watcher needs from its process type."""

    #: whether a replacement may start before the process it replaces stops.
    rolling: bool

    def prepare(self) -> None:
        """Get ready for a (re)start: load configs etc. Raises ConfigError."""

    def command(self, wid: int) -> Command:
        """The command for slot ``wid``. Raises ConfigError."""

    def is_ready(self, process: WorkerProcess, now: float) -> bool:
        """Whether a starting process serves now."""

    def describe_exit(self, returncode: int) -> str:
        """A one-line reason for an exit."""


class CommandLauncher:
    """Runs ``spec.cmd`` with substitutions; readiness by the worker's stats file or a delay."""

    rolling = True

    def __init__(self, spec: WatcherSpec, socket_fds: Mapping[str, int], stats_dir: Path) -> None:
        self.spec = spec
        self.socket_fds = dict(socket_fds)
        self.stats_dir = stats_dir

    def prepare(self) -> None:
        """Nothing to prepare for a plain command."""

    def command(self, wid: int) -> Command:
        spec = self.spec
        values = substitutions(spec, wid, self.socket_fds)
        where = f"watchers.{spec.name}"
        argv = tuple(template.substitute(arg, values, f"{where}.cmd") for arg in spec.cmd)
        env = dict(os.environ) if spec.copy_env else {}
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(
            {k: template.substitute(v, values, f"{where}.env.{k}") for k, v in spec.env.items()}
        )
        stats_file = self.stats_dir / f"{spec.name}.{wid}.json"
        env.update(environment.worker_environment(str(stats_file), wid))
        env.update(environment.mongrel2_chroots_environment(self._mongrel2_chroots()))
        used = set(spec.use_sockets) | {
            ref.removeprefix("sockets.")
            for ref in template.references(spec.cmd)
            if ref.startswith("sockets.")
        }
        fds = tuple(sorted(self.socket_fds[name] for name in used))
        return Command(argv, env, spec.working_dir, fds, str(stats_file))

    def _mongrel2_chroots(self) -> list[environment.Mongrel2Chroot]:
        """Where the stack's Mongrel2 servers run: a worker finds their upload files there,
        whatever its own cwd (``serve --config`` would take a relative chroot from it)."""
        if not self.spec.mongrel2_peers:
            return []
        from m2bridge.supervisor.mongrel2_watcher import served_chroots

        return served_chroots(self.spec.mongrel2_peers, self.stats_dir.parent)

    def is_ready(self, process: WorkerProcess, now: float) -> bool:
        age = process.age(now)
        if self.spec.readiness == "delay":
            return age >= self.spec.warmup_delay
        if read_counters(process.stats_file, process.pid) is not None:
            return True
        if age >= self.spec.ready_timeout:
            log.warning(
                "%s (pid %d) wrote no stats file in %.0f s; treating it as ready",
                process.slot.label,
                process.pid,
                self.spec.ready_timeout,
            )
            return True
        return False

    def describe_exit(self, returncode: int) -> str:
        return describe_status(returncode)
