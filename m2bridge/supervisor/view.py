"""ArbiterView: the narrow read/write face of the running supervisor that commands see.

Control commands and Unix signals both go through it, so ``incr`` and SIGTTIN (and
``reload`` and SIGHUP) share one code path.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.control import MAX_PROCESSES, Errno
from m2bridge.supervisor.process import signal_number
from m2bridge.supervisor.stats import self_sample
from m2bridge.supervisor.topology import runs_the_relay, topology_error

if TYPE_CHECKING:
    from m2bridge.supervisor.arbiter import Supervisor
    from m2bridge.supervisor.watcher import Watcher

log = logging.getLogger("m2bridge.supervisor")


class ArbiterView:
    """Implements ``commands.base.SupervisorView`` over a ``Supervisor``."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor

    def _watcher(self, name: str) -> Watcher:
        try:
            return self._sup.watchers[name]
        except KeyError:
            raise ControlError(f"no watcher named {name!r}", Errno.NO_SUCH_WATCHER) from None

    def _changing(self, name: str) -> Watcher:
        if self._sup.quitting:
            raise ControlError("the supervisor is quitting", Errno.COMMAND_FAILED)
        return self._watcher(name)

    def scalable(self) -> list[str]:
        """Watchers that TTIN/TTOU/HUP act on: all but the mongrel2 and relay ones."""
        return [
            name
            for name, w in self._sup.watchers.items()
            if w.spec.mongrel2 is None and not runs_the_relay(w.spec.cmd)
        ]

    def watcher_names(self) -> list[str]:
        return list(self._sup.watchers)

    def watcher_status(self, name: str) -> dict[str, Any]:
        return self._watcher(name).status(time.monotonic())

    def numprocesses(self, name: str) -> int:
        return self._watcher(name).desired.numprocesses

    def set_numprocesses(self, name: str, count: int) -> int:
        watcher = self._changing(name)
        if watcher.spec.mongrel2 is not None and count > 1:
            raise ControlError(f"{name} is a mongrel2 watcher: one process", Errno.BAD_ARGUMENTS)
        problem = topology_error(name, watcher.spec.cmd, count)
        if problem is not None:
            raise ControlError(problem, Errno.BAD_ARGUMENTS)
        if count > MAX_PROCESSES:
            raise ControlError(
                f"{name}: {count} processes is over the limit of {MAX_PROCESSES}",
                Errno.BAD_ARGUMENTS,
            )
        before = watcher.desired.numprocesses
        after = watcher.set_numprocesses(count)
        if after != before:
            log.info("%s: numprocesses %d -> %d", name, before, after)
        return after

    def process_stats(self, name: str) -> list[dict[str, Any]]:
        return self._watcher(name).process_stats(time.monotonic(), self._sup.sampler)

    def watcher_report(self, name: str) -> dict[str, Any]:
        return self._watcher(name).report(time.monotonic(), self._sup.sampler)

    def mongrel2_status(self) -> list[dict[str, Any]]:
        """Each Mongrel2 watcher's control-port figures (``Mongrel2Probe.snapshot``)."""
        now = time.monotonic()
        report = []
        for name, probe in self._sup.probes.items():
            snapshot = {"watcher": name, **probe.snapshot(now)}
            if not self._sup.watchers[name].running():  # not asked while it runs no process
                snapshot.update(answering=False, connections=None, tasks=None, failing=False)
                snapshot["error"] = "not running"
            report.append(snapshot)
        return report

    def sample_cpu(self) -> None:
        """Let the sampler record CPU times of every process and the supervisor's own (the
        arbiter calls this every loop turn), so ``stats`` shows recent CPU % on any call."""
        live = {pid for w in self._sup.watchers.values() for pid in w.processes}
        self._sup.sampler.tick(live | {os.getpid()})

    def supervisor_stats(self) -> dict[str, Any]:
        sup = self._sup
        processes = sum(len(w.processes) for w in sup.watchers.values())
        return {
            **self_sample(sup.sampler),
            "age": round(time.monotonic() - sup.started_at, 1),
            "stack": sup.config.name,
            "watchers": len(sup.watchers),
            "processes": processes,
            "commands": sup.server.handled if sup.server else 0,
            "quitting": sup.quitting,
        }

    def reload(self, name: str) -> dict[str, Any]:
        return self._replace([name] if name else self.scalable(), rolling=True)

    def restart(self, name: str) -> dict[str, Any]:
        return self._replace([name] if name else self.watcher_names(), rolling=False)

    def _replace(self, names: list[str], rolling: bool) -> dict[str, Any]:
        for watcher in [self._changing(n) for n in names]:
            log.info("%s: %s", watcher.name, "reloading (rolling)" if rolling else "restarting")
            try:
                watcher.reload(rolling=rolling)
            except ConfigError as exc:
                log.error("%s: not replaced: %s", watcher.name, exc)
                raise ControlError(f"{watcher.name}: {exc}", Errno.COMMAND_FAILED) from exc
        return {"watchers": names}

    def start(self, name: str) -> dict[str, Any]:
        watcher = self._changing(name)
        log.info("%s: start", name)
        watcher.start()
        return {"name": name}

    def stop(self, name: str) -> dict[str, Any]:
        watcher = self._changing(name)
        log.info("%s: stop", name)
        watcher.stop()
        return {"name": name}

    def send_signal(self, name: str, signal: str) -> int:
        watcher = self._changing(name)
        try:
            signum = signal_number(signal)
        except ValueError as exc:
            raise ControlError(str(exc), Errno.BAD_ARGUMENTS) from None
        log.info("%s: sending %s", name, signal.upper())
        return watcher.send_signal(signum)

    def sockets(self) -> list[dict[str, Any]]:
        return [bound.describe() for bound in self._sup.sockets.values()]

    def quit(self) -> None:
        self._sup.request_quit()
