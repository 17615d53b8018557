"""One watcher's lifetime: its desired state, its processes, and the execution of plan actions.

Operator verbs (``incr``, ``reload``, ``stop``...) only change ``desired``; ``tick`` asks
``plan.reconcile`` what to do and does it; ``reap`` collects exits and feeds the flapping
record (an exit the supervisor or the operator asked for never counts, nor one by a signal the
operator sent) and keeps the slot of a process that died for its replacement.

A worker's stats file carries a ``heartbeat`` its publishing greenlet rewrites twice a second;
a request holding the CPU stops it. The watcher notes, on its own monotonic clock, when it
last saw the value change (``observe_beat``: no wall-clock comparison, so neither a clock step
nor a paused supervisor fakes a hang); a ready process silent for more than ``hang_timeout``
(``missed_heartbeat``) cannot drain, so it is killed (SIGKILL to its group), counted as
``hung`` and replaced in its slot.
"""

from __future__ import annotations

import logging
import random
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from m2bridge.errors import ConfigError
from m2bridge.supervisor import plan
from m2bridge.supervisor.counters import RESTART_REASONS, Ended, totals
from m2bridge.supervisor.launcher import Launcher
from m2bridge.supervisor.process import Slot, WorkerProcess, signal_number
from m2bridge.supervisor.stack import WatcherSpec
from m2bridge.supervisor.stats import COUNTERS, Sampler, read_counters, rss_of

log = logging.getLogger("m2bridge.supervisor")

#: signals after which the operator expects the process to end (its exit is not a crash).
ENDING_SIGNALS = frozenset(signal_number(name) for name in ("TERM", "INT", "QUIT", "KILL", "ABRT"))
#: Seconds between two RSS checks of a watcher's processes (``max_rss``).
RSS_CHECK_INTERVAL = 1.0
MIB = 1 << 20
#: What makes a process reopen its log files: Mongrel2 rotates them on HUP (USR1 kills it);
#: m2bridge workers and the relay take USR1 as gunicorn's workers do.
MONGREL2_REOPEN_SIGNAL = signal.SIGHUP
REOPEN_SIGNAL = signal.SIGUSR1
#: Seconds between two reads of the ready processes' heartbeats (``hang_timeout``).
HEARTBEAT_CHECK_INTERVAL = 0.5


@dataclass(frozen=True)
class Beat:
    """The last heartbeat value a process published, and when (the supervisor's monotonic
    clock) the watcher first saw it."""

    value: float
    seen_at: float


def observe_beat(last: Beat | None, heartbeat: object, now: float) -> Beat | None:
    """What the watcher knows after reading ``heartbeat`` (the file's field) at ``now``.

    A new value is a beat seen now; the same value keeps the time it was first seen. None: the
    process publishes no heartbeat (no file, a final write, a worker without the field, a
    command that is no m2bridge worker), so it is never judged hung.
    """
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float):
        return None
    if last is not None and last.value == heartbeat:
        return last
    return Beat(float(heartbeat), now)


def missed_heartbeat(beat: Beat | None, now: float, hang_timeout: float) -> float | None:
    """Seconds without a new heartbeat when over ``hang_timeout`` (the process is hung), else
    None (0 turns the check off; a process without a heartbeat is never hung)."""
    if beat is None or hang_timeout <= 0:
        return None
    silent = now - beat.seen_at
    return silent if silent > hang_timeout else None


class Watcher:
    """``numprocesses`` copies of one command, kept alive and replaced as the plan says."""

    def __init__(self, spec: WatcherSpec, launcher: Launcher, sink: BinaryIO) -> None:
        self.spec = spec
        self.name = spec.name
        self.launcher = launcher
        self.sink = sink
        self.policy = plan.Policy(
            spec.graceful_timeout, spec.warmup_delay, launcher.rolling, spec.flapping
        )
        self.desired = plan.Desired(spec.numprocesses)
        self.history = plan.History()
        self.processes: dict[int, WorkerProcess] = {}
        self.reason = ""
        self.stop_signum = signal_number(spec.stop_signal)
        self.reopen_signum = MONGREL2_REOPEN_SIGNAL if spec.mongrel2 else REOPEN_SIGNAL
        self._prepared = False
        self._rss_checked_at = 0.0
        self._beats_checked_at = 0.0
        #: the last heartbeat seen per pid (``observe_beat``)
        self._beats: dict[int, Beat] = {}
        #: the last counters of the processes that ended (the totals never go down)
        self.ended = Ended()
        #: processes replaced, by reason (``counters.RESTART_REASONS``)
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)
        #: whether its processes publish request counters (workers do; Mongrel2 does not)
        self.counting = False

    def prepare(self) -> None:
        """Let the launcher load what it needs before the first spawn. Raises ConfigError."""
        self.launcher.prepare()
        self._prepared = True

    # -- operator verbs: they change what is desired, never a process directly --

    def set_numprocesses(self, count: int) -> int:
        self.desired = replace(self.desired, numprocesses=max(0, count))
        return self.desired.numprocesses

    def reload(self, rolling: bool = True) -> None:
        """Replace every process by a new one (rolling: each new one serves before an old stops).

        The launcher prepares first (a mongrel2 watcher reloads its config), so a broken
        config is refused while the running processes keep serving.

        Raises:
            ConfigError: the launcher cannot prepare; nothing changed.
        """
        self.prepare()
        self.restarts["reload"] += len(self.running())
        self.desired = replace(
            self.desired, generation=self.desired.generation + 1, rolling=rolling, active=True
        )

    def start(self) -> None:
        """Run again; forget flapping and failures."""
        self.desired = replace(self.desired, active=True)
        self.history = plan.reset(self.history)
        self.reason = ""
        self._prepared = False  # the operator may have fixed the config: load it again

    def stop(self) -> None:
        self.desired = replace(self.desired, active=False)

    def send_signal(self, signum: int) -> int:
        """Signal every running process for the operator; returns how many got it.

        A process that then ends by this signal did what the operator asked: not a crash.
        """
        targets = [p for p in self.processes.values() if p.stopping_since is None]
        for process in targets:
            if signum in ENDING_SIGNALS or signum == self.stop_signum:
                process.expected_exit = True
            process.operator_signals.add(signum)
            process.send_signal(signum)
        return len(targets)

    def reopen_logs(self) -> int:
        """Have every running process reopen its log files (the supervisor got USR1)."""
        return self.send_signal(self.reopen_signum)

    # -- the loop's side --

    def tick(self, now: float) -> None:
        """Refresh readiness, then execute what ``plan.reconcile`` asks for."""
        self._refresh(now)
        views = [p.view() for p in self.processes.values()]
        for action in plan.reconcile(self.desired, views, now, self.policy, self.history):
            self._apply(action, now)

    def _apply(self, action: plan.Action, now: float) -> None:
        match action:
            case plan.Spawn():
                if not self.history.gave_up:  # one failed spawn is enough this tick
                    self._spawn(action, now)
            case plan.Stop(pid=pid):
                self.processes[pid].stop(self.stop_signum, now)
            case plan.Kill(pid=pid):
                process = self.processes[pid]
                log.warning(
                    "%s (pid %d) still running %g s after stop: killing it",
                    process.slot.label,
                    pid,
                    self.spec.graceful_timeout,
                )
                process.kill()

    def _spawn(self, action: plan.Spawn, now: float) -> None:
        slot = Slot(self.name, action.wid, action.generation)
        try:
            if not self._prepared:
                self.prepare()
            command = self.launcher.command(action.wid)
            if command.stats_file:
                Path(command.stats_file).unlink(missing_ok=True)
            process = WorkerProcess.spawn(command, slot, now, self.sink)
        except (OSError, ConfigError) as exc:
            self.history = plan.record_failure(self.history)
            self.reason = f"cannot start: {exc}"
            log.error(
                "%s: cannot start: %s; not retrying (fix it, then `m2bridge ctl start %s`)",
                slot.label,
                exc,
                self.name,
            )
            return
        if self.spec.max_requests:
            process.max_requests = self.spec.max_requests + random.randint(
                0, self.spec.max_requests_jitter
            )
        self.processes[process.pid] = process
        self.history = plan.record_spawn(self.history, now, action.wid)
        log.info("%s started (pid %d)", slot.label, process.pid)

    def _refresh(self, now: float) -> None:
        check_rss = self.spec.max_rss > 0 and now - self._rss_checked_at >= RSS_CHECK_INTERVAL
        if check_rss:
            self._rss_checked_at = now
        check_beats = (
            self.spec.hang_timeout > 0 and now - self._beats_checked_at >= HEARTBEAT_CHECK_INTERVAL
        )
        if check_beats:
            self._beats_checked_at = now
        for process in self.processes.values():
            if process.stopping_since is not None or process.killed:
                continue
            if not process.ready and self.launcher.is_ready(process, now):
                process.ready = True
                log.info("%s (pid %d) is ready", process.slot.label, process.pid)
            if check_beats and process.ready and self._hung(process, now):
                continue
            if process.retire:
                continue
            retire = self._retire_reason(process, check_rss and process.ready)
            if retire is not None:
                key, reason = retire
                self.restarts[key] += 1
                process.retire = True  # the plan replaces it rolling: one at a time
                log.info("%s (pid %d) %s: replacing it", process.slot.label, process.pid, reason)

    def _hung(self, process: WorkerProcess, now: float) -> bool:
        """Read ``process``'s heartbeat; kill it if it missed it too long (True then)."""
        counters = read_counters(process.stats_file, process.pid) or {}
        beat = observe_beat(self._beats.get(process.pid), counters.get("heartbeat"), now)
        if beat is None:
            self._beats.pop(process.pid, None)
            return False
        self._beats[process.pid] = beat
        silent = missed_heartbeat(beat, now, self.spec.hang_timeout)
        if silent is None:
            return False
        log.warning(
            "%s (pid %d) missed its heartbeat for %.0f s (hang_timeout = %g): hung "
            "(a request holding the CPU?); killing and replacing it",
            process.slot.label,
            process.pid,
            silent,
            self.spec.hang_timeout,
        )
        self.restarts["hung"] += 1
        process.kill()  # it cannot drain: its hub is stalled; its slot is respawned once reaped
        return True

    def _retire_reason(self, process: WorkerProcess, check_rss: bool) -> tuple[str, str] | None:
        """Why ``process`` should be replaced: ``(restart reason, what it did)``, or None."""
        if process.max_requests:
            counters = read_counters(process.stats_file, process.pid) or {}
            if int(counters.get("served", 0)) >= process.max_requests:
                return "max_requests", f"served {process.max_requests} requests"
        if check_rss:
            rss = rss_of(process.pid)
            if rss is not None and rss > self.spec.max_rss * MIB:
                return "max_rss", f"uses {rss / MIB:.0f} MiB, over max_rss = {self.spec.max_rss}"
        return None

    def reap(self, now: float) -> list[WorkerProcess]:
        """Collect processes that ended and account for each exit."""
        exited = [p for p in self.processes.values() if p.poll() is not None]
        for process in exited:
            del self.processes[process.pid]
            self._beats.pop(process.pid, None)
            if process.stats_file is not None:
                self._keep_counters(process)
                process.stats_file.unlink(missing_ok=True)
            if process.stopping_since is None and self.desired.active:
                self.history = plan.record_vacancy(self.history, process.wid)
            self._account_exit(process, now)
        return exited

    def _keep_counters(self, process: WorkerProcess) -> None:
        """Add what an ended process last published to the watcher's totals."""
        counters = read_counters(process.stats_file, process.pid)
        if counters is not None:
            self.counting = True
            self.ended.add(counters)

    def _account_exit(self, process: WorkerProcess, now: float) -> None:
        label, pid = process.slot.label, process.pid
        what = self.launcher.describe_exit(process.returncode or 0)
        if process.expected_exit or not self.desired.active:
            log.info("%s (pid %d) %s", label, pid, what)
            return
        if process.killed_by_operator():
            log.info("%s (pid %d) %s, sent by the operator: not a crash", label, pid, what)
            return
        log.warning("%s (pid %d) %s after %.1f s", label, pid, what, process.age(now))
        self.restarts["exit" if process.returncode == 0 else "crash"] += 1
        if not self.history.gave_up:
            self.reason = f"{label} {what}"
        if not self.spec.respawn:
            self.set_numprocesses(self.desired.numprocesses - 1)
            return
        before = self.history
        self.history = plan.record_exit(before, now, process.age(now), self.spec.flapping)
        if before.gave_up:
            return
        if self.history.gave_up or self.history.not_before > before.not_before:
            self.restarts["flapping"] += 1
        if self.history.gave_up:
            self.reason = f"flapping: gave up after {before.retries} back-offs; last: {what}"
            log.error(
                "%s: %s (`m2bridge ctl start %s` tries again)", self.name, self.reason, self.name
            )
        elif self.history.not_before > before.not_before:
            delay = self.history.not_before - now
            log.warning("%s is flapping (%s): next start in %.1f s", self.name, what, delay)

    # -- reporting --

    def running(self) -> list[WorkerProcess]:
        return [p for p in self.processes.values() if p.stopping_since is None]

    def state(self, now: float) -> str:
        """One of active, starting, reloading, stopping, stopped, backoff, failed."""
        running = self.running()
        if self.history.gave_up:
            return "failed"
        if not self.desired.active:
            return "stopping" if self.processes else "stopped"
        if now < self.history.not_before:
            return "backoff"
        if any(p.slot.generation != self.desired.generation or p.retire for p in running):
            return "reloading"
        if len(running) != self.desired.numprocesses or not all(p.ready for p in running):
            return "starting"
        return "stopping" if len(self.processes) > len(running) else "active"

    def busy(self, now: float) -> bool:
        """Whether something is in transition (the arbiter then ticks faster)."""
        return self.state(now) not in ("active", "stopped", "failed")

    def status(self, now: float) -> dict[str, Any]:
        running = self.running()
        return {
            "name": self.name,
            "state": self.state(now),
            "numprocesses": self.desired.numprocesses,
            "running": len(running),
            "ready": sum(1 for p in running if p.ready),
            "stopping": len(self.processes) - len(running),
            "generation": self.desired.generation,
            "retry_in": round(max(0.0, self.history.not_before - now), 1),
            "reason": self.reason,
        }

    def process_stats(self, now: float, sampler: Sampler) -> list[dict[str, Any]]:
        """One row per process: pid, wid, CPU %, RSS, fds, age, served, in flight."""
        rows: list[dict[str, Any]] = self.report(now, sampler)["processes"]
        return rows

    def report(self, now: float, sampler: Sampler) -> dict[str, Any]:
        """Its processes' rows, its request totals and latency histograms (None for a watcher
        whose processes publish no counters), and its restarts by reason."""
        rows, live = [], []
        for process in sorted(self.processes.values(), key=lambda p: p.wid):
            counters = read_counters(process.stats_file, process.pid) or {}
            if counters:
                live.append(counters)
            row: dict[str, Any] = {
                "pid": process.pid,
                "wid": process.wid,
                "state": "stopping"
                if process.stopping_since is not None
                else ("ready" if process.ready else "starting"),
                "age": round(process.age(now), 1),
                **sampler.sample(process.pid),
            }
            row.update({key: counters.get(key) for key in COUNTERS})
            rows.append(row)
        self.counting = self.counting or bool(live)
        summed, latency = totals(self.ended, live) if self.counting else (None, None)
        return {
            "name": self.name,
            "processes": rows,
            "totals": summed,
            "latency": latency,
            "restarts": dict(self.restarts),
        }
