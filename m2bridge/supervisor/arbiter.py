"""The supervisor: one loop that keeps every watcher of a stack at its desired state.

Each turn: wait (at most 0.5 s) on the control socket, the signal wake-up pipe, the
children's output pipes, the Mongrel2 control-port probes and the metrics endpoint's sockets;
answer control requests and HTTP requests; drain queued signals into ``handle_<sig>``;
reap exits with ``Popen.poll``; let every watcher reconcile and act; record the running
children in the rundir (a supervisor started after a ``kill -9`` of this one ends any left);
tell systemd, when it listens (``notify.py``), how the stack is.
Signal handlers only enqueue; control commands and signals change desired state through the
same ``ArbiterView``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor import commands
from m2bridge.supervisor.commands.status import not_as_asked, problems_of
from m2bridge.supervisor.http_endpoint import HttpEndpoint
from m2bridge.supervisor.launcher import CommandLauncher, Launcher
from m2bridge.supervisor.mongrel2_probe import Mongrel2Probe
from m2bridge.supervisor.mongrel2_status import control_endpoint
from m2bridge.supervisor.notify import Notifier, status_line
from m2bridge.supervisor.rundir import (
    kill_stale_children,
    lock_rundir,
    prepare_rundir,
    record_children,
)
from m2bridge.supervisor.server import ControlServer
from m2bridge.supervisor.sockets import BoundSocket, bind_all, close_all
from m2bridge.supervisor.stack import StackConfig, WatcherSpec
from m2bridge.supervisor.stats import Sampler
from m2bridge.supervisor.statsd import StatsdPusher
from m2bridge.supervisor.view import ArbiterView
from m2bridge.supervisor.watcher import Watcher

log = logging.getLogger("m2bridge.supervisor")

IDLE_TICK = 0.5
BUSY_TICK = 0.05
HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
    signal.SIGUSR1,
)
#: Control commands that replace processes: systemd hears RELOADING=1, then READY=1.
RELOADS = ("reload", "restart")


class Supervisor:
    """Runs a ``StackConfig`` in the foreground until ``quit`` (or TERM/INT)."""

    def __init__(
        self,
        config: StackConfig,
        sink: BinaryIO | None = None,
        reopen_log: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink if sink is not None else sys.stdout.buffer
        self.reopen_log = reopen_log  # reopens the supervisor's --log-file (USR1)
        self.rundir = Path(config.rundir)
        self.watchers: dict[str, Watcher] = {}
        self.sockets: dict[str, BoundSocket] = {}
        self.server: ControlServer | None = None
        #: Mongrel2 watcher name -> the probe of its control port
        self.probes: dict[str, Mongrel2Probe] = {}
        #: The server row each Mongrel2 watcher's probe was last set up for (a new row after
        #: every prepare: only then can the control endpoint change).
        self._probed: dict[str, object] = {}
        self.http: HttpEndpoint | None = None
        self.statsd: StatsdPusher | None = None
        self.sampler = Sampler()
        self.started_at = time.monotonic()
        self.quitting = False
        self.view = ArbiterView(self)
        self.notifier = Notifier.from_environ()
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wakeup_fd = -1
        self._recorded: frozenset[int] = frozenset()
        self._handlers: dict[int, Callable[[], None]] = {
            signal.SIGTERM: self.handle_term,
            signal.SIGINT: self.handle_int,
            signal.SIGQUIT: self.handle_quit,
            signal.SIGHUP: self.handle_hup,
            signal.SIGTTIN: self.handle_ttin,
            signal.SIGTTOU: self.handle_ttou,
            signal.SIGCHLD: self.handle_chld,
            signal.SIGUSR1: self.handle_usr1,
        }

    def run(self) -> int:
        """Start everything, loop until the stack has stopped, clean up.

        Returns:
            0 after a normal quit.

        Raises:
            ConfigError: the stack cannot start (rundir, sockets, control endpoint, a
                mongrel2 config); nothing is left running.
        """
        with contextlib.ExitStack() as stack:
            self._setup(stack)
            self._loop()
        log.info("supervisor %d: stack %r stopped", os.getpid(), self.config.name)
        return 0

    def _setup(self, stack: contextlib.ExitStack) -> None:
        stack.callback(self.notifier.close)
        rundir = prepare_rundir(self.rundir)
        stack.callback(os.close, lock_rundir(rundir))
        for pid in kill_stale_children(rundir):
            log.warning("killed pid %d, left running by a supervisor that was killed", pid)
        stack.callback(record_children, rundir, ())
        self.sockets = bind_all(self.config.sockets)
        stack.callback(close_all, self.sockets)
        fds = {name: bound.fd for name, bound in self.sockets.items()}
        for name, spec in self.config.watchers.items():
            self.watchers[name] = Watcher(spec, make_launcher(spec, fds, rundir), self.sink)
        stack.callback(self._kill_all)
        for watcher in self.watchers.values():
            watcher.prepare()
        check_listeners(self.watchers)
        self.server = ControlServer(self.config.control, self._dispatch)
        stack.callback(self.server.close)
        stack.callback(self._close_probes)
        self._sync_probes()
        metrics = self.config.metrics
        if metrics.address is not None:
            self.http = self._serve_metrics()
            stack.callback(self.http.close)
        if metrics.statsd is not None:
            self.statsd = StatsdPusher(
                metrics.statsd, metrics.statsd_prefix, metrics.statsd_interval
            )
            stack.callback(self.statsd.close)
            log.info("pushing to statsd at %s every %g s", metrics.statsd, metrics.statsd_interval)
        self._install_signals(stack)
        log.info(
            "supervisor %d: stack %r, control at %s",
            os.getpid(),
            self.config.name,
            self.config.control.endpoint,
        )

    def _dispatch(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name in RELOADS:
            self.notifier.reloading()
        return commands.run(self.view, name, args)

    def _serve_metrics(self) -> HttpEndpoint:
        from m2bridge.supervisor.exposition import make_routes  # prometheus_client: only then

        metrics = self.config.metrics
        assert metrics.address is not None
        endpoint = HttpEndpoint(
            metrics.address, make_routes(lambda name: self._dispatch(name, {})), metrics.token
        )
        log.info(
            "metrics at http://%s/metrics, health at /healthz",
            f"{metrics.address.rpartition(':')[0]}:{endpoint.port}",
        )
        return endpoint

    def _sync_probes(self) -> None:
        """One probe per Mongrel2 watcher, on the control port of the config it runs (a reload
        may change it: checked once per config read); none while it has no process."""
        for name, watcher in self.watchers.items():
            server = getattr(watcher.launcher, "server", None)
            if watcher.spec.mongrel2 is None or server is None or self._probed.get(name) is server:
                continue
            self._probed[name] = server
            as_root = os.geteuid() == 0  # Mongrel2 chroots only then; else it stays in its cwd
            chroot = str(getattr(watcher.launcher, "chroot", "")) if as_root else ""
            chroot = chroot or str(Path(watcher.spec.working_dir).resolve())
            try:
                endpoint = control_endpoint(server.control_port, chroot, as_root)
            except ValueError as exc:
                log.warning("%s: no control-port figures: %s", name, exc)
                continue
            probe = self.probes.get(name)
            if probe is not None and probe.endpoint != endpoint:
                probe.close()
                probe = None
            if probe is None:
                self.probes[name] = Mongrel2Probe(endpoint)

    def _close_probes(self) -> None:
        for probe in self.probes.values():
            probe.close()
        self.probes.clear()

    def _install_signals(self, stack: contextlib.ExitStack) -> None:
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        stack.callback(os.close, read_fd)
        stack.callback(os.close, write_fd)
        self._wakeup_fd = read_fd
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        stack.callback(signal.set_wakeup_fd, previous_fd)
        for signum in HANDLED_SIGNALS:
            stack.callback(signal.signal, signum, signal.signal(signum, self._enqueue))

    def _enqueue(self, signum: int, frame: FrameType | None) -> None:
        """The only signal handler: enqueue (the wake-up fd ends the poll). No logging here."""
        self._signals.put_nowait(signum)

    # -- the loop --

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._drain_signals()
            for watcher in self.watchers.values():
                watcher.reap(now)
            if self.quitting and self._quit_step():
                return
            for watcher in self.watchers.values():
                watcher.tick(now)
            self._record_children()
            self.view.sample_cpu()
            self._tick_probes(now)
            self._notify(now)
            self._wait(now)

    def _tick_probes(self, now: float) -> None:
        self._sync_probes()
        for name, probe in self.probes.items():
            if self.watchers[name].running():
                probe.tick(now)
        if self.http is not None:
            self.http.expire(now)
        if self.statsd is not None:
            self.statsd.tick(now, lambda: self._dispatch("stats", {}))

    def _notify(self, now: float) -> None:
        """READY=1 once every watcher runs as asked (again when a reload has settled), STATUS=
        on change, the watchdog ping when due."""
        if not self.notifier.enabled:
            return
        rows = [watcher.status(now) for watcher in self.watchers.values()]
        problems = problems_of(rows, self.view.mongrel2_status())
        processes = sum(len(watcher.processes) for watcher in self.watchers.values())
        self.notifier.update(
            now,
            as_asked=not not_as_asked(rows),
            settled=not any(watcher.busy(now) for watcher in self.watchers.values()),
            status=status_line(len(rows), processes, problems, self.quitting),
        )

    def _wait(self, now: float) -> None:
        relays = {
            process.relay.fd: process.relay
            for watcher in self.watchers.values()
            for process in watcher.processes.values()
            if process.relay is not None and not process.relay.closed
        }
        busy = self.quitting or any(w.busy(now) for w in self.watchers.values())
        assert self.server is not None
        probes = {probe.socket: probe for probe in self.probes.values()}
        http = self.http
        http_fds = set(http.fds()) if http is not None else set()
        writable = http.writable() if http is not None else []
        ready = self.server.poll(
            [self._wakeup_fd, *relays, *probes, *http_fds],
            min(BUSY_TICK if busy else IDLE_TICK, self.notifier.wait_limit(now)),
            writable,
        )
        for item in ready:
            if item == self._wakeup_fd:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wakeup_fd, 512):
                        pass
            elif item in relays:
                relays[item].read()
            elif item in probes:
                probes[item].on_readable(time.monotonic())
            elif http is not None and item in http_fds:
                http.handle(item, time.monotonic())

    def _record_children(self) -> None:
        pids = frozenset(pid for watcher in self.watchers.values() for pid in watcher.processes)
        if pids != self._recorded:
            record_children(self.rundir, pids)
            self._recorded = pids

    def _drain_signals(self) -> None:
        while True:
            try:
                signum = self._signals.get_nowait()
            except queue.Empty:
                return
            if signum != signal.SIGCHLD:
                log.info("got %s", signal.Signals(signum).name)
            try:
                self._handlers[signum]()
            except ControlError as exc:  # e.g. HUP while quitting, or a broken config
                log.warning("%s ignored: %s", signal.Signals(signum).name, exc)

    # -- quitting: lowest priority first (handlers drain while mongrel2 still delivers) --

    def request_quit(self) -> None:
        """Graceful quit; a second request kills what is left."""
        if self.quitting:
            log.warning("second quit request: killing every process now")
            self._kill_all()
            return
        log.info("quitting: stopping watchers gracefully")
        self.quitting = True
        self.notifier.stopping()

    def _quit_step(self) -> bool:
        pending = [w for w in self.watchers.values() if w.desired.active or w.processes]
        if not pending:
            return True
        lowest = min(w.spec.priority for w in pending)
        for watcher in pending:
            if watcher.spec.priority == lowest and watcher.desired.active:
                log.info("stopping %s", watcher.name)
                watcher.stop()
        return False

    def _kill_all(self) -> None:
        """SIGKILL and reap every remaining process (fast quit, or the safety net on errors)."""
        for watcher in self.watchers.values():
            watcher.stop()
            for process in watcher.processes.values():
                process.kill()
            deadline = time.monotonic() + 5
            while watcher.processes and time.monotonic() < deadline:
                watcher.reap(time.monotonic())
                time.sleep(0.01)

    # -- signals: the same code paths as the control commands --

    def handle_term(self) -> None:
        self.request_quit()

    def handle_int(self) -> None:
        self.request_quit()

    def handle_quit(self) -> None:
        self.quitting = True
        self.notifier.stopping()
        self._kill_all()

    def handle_hup(self) -> None:
        self.notifier.reloading()
        self.view.reload("")

    def handle_ttin(self) -> None:
        for name in self.view.scalable():
            self.view.set_numprocesses(name, self.view.numprocesses(name) + 1)

    def handle_ttou(self) -> None:
        for name in self.view.scalable():
            self.view.set_numprocesses(name, max(0, self.view.numprocesses(name) - 1))

    def handle_chld(self) -> None:
        """Nothing to do: the wake-up already ended the poll, and the loop reaps next."""

    def handle_usr1(self) -> None:
        """Reopen log files (as gunicorn): ours, then every process's (Mongrel2 gets HUP)."""
        if self.reopen_log is not None:
            self.reopen_log()
        sent = sum(watcher.reopen_logs() for watcher in self.watchers.values())
        log.info("reopened log files; asked %d process(es) to reopen theirs", sent)


def check_listeners(watchers: dict[str, Watcher]) -> None:
    """Refuse a stack whose Mongrel2 watchers would listen on one address (a config may hold
    several servers on one port: Mongrel2 runs one per process).

    Raises:
        ConfigError: names both watchers and the address.
    """
    from m2bridge.supervisor.mongrel2_watcher import listener_clashes

    servers = {
        watcher.name: server
        for watcher in watchers.values()
        if (server := getattr(watcher.launcher, "server", None)) is not None
    }
    for _name, problem in listener_clashes(servers):
        raise ConfigError(problem)


def make_launcher(spec: WatcherSpec, socket_fds: dict[str, int], rundir: Path) -> Launcher:
    """The launcher for a watcher's type."""
    if spec.mongrel2 is not None:
        from m2bridge.supervisor.mongrel2_watcher import Mongrel2Launcher

        return Mongrel2Launcher(spec, rundir)
    return CommandLauncher(spec, socket_fds, rundir / "stats")
