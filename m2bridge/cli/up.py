"""``m2bridge up STACK.toml``: run a whole stack (Mongrel2, handler workers, any command).

In the foreground by default: the supervisor logs to stderr, every process's output is relayed
to stdout prefixed ``name.wid | ``; with ``--log-file`` both go to that file instead, reopened
at its path on SIGUSR1 (logrotate). ``--daemon`` starts the same command detached (a fresh
interpreter in its own session, no fork), logging to ``--log-file``, and returns once the
supervisor answers on its control socket; ``--pid-file`` is written for service managers.
``--check`` starts nothing: it validates the stack file, loads each Mongrel2 config into a
temporary database, builds every watcher's command as the supervisor would, imports each
``m2bridge serve`` app in a subprocess (like gunicorn's ``--check-config``) and checks the
addresses; one line per check, exit 0 when all pass.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.stack import StackConfig, WatcherSpec, check_address, load_stack
from m2bridge.supervisor.topology import m2bridge_command

if TYPE_CHECKING:
    from m2bridge.supervisor.mongrel2_watcher import ServerRow

log = logging.getLogger("m2bridge.supervisor")

LOG_FORMAT = "%(asctime)s [supervisor] %(levelname)s %(message)s"
DAEMON_START_TIMEOUT = 30.0
#: ``--check``: seconds an ``m2bridge serve`` app may take to import.
CHECK_IMPORT_TIMEOUT = 30.0


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run a stack file: Mongrel2, handler workers and any process, under one supervisor",
        description="Run every watcher of STACK (a TOML stack file) until TERM/INT or "
        "`m2bridge ctl quit`; control it live with `m2bridge ctl`.",
    )
    parser.add_argument("stack", metavar="STACK", help="the stack file (TOML)")
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate STACK, its Mongrel2 configs, commands, apps and addresses; start nothing",
    )
    parser.add_argument("--pid-file", help="write the supervisor's pid here")
    parser.add_argument(
        "--log-file",
        help="where logs and the processes' output go, reopened on SIGUSR1 "
        "(default: stderr and stdout; with --daemon: RUNDIR/up.log)",
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics and /healthz there (overrides [metrics] address; "
        "port 0 picks a free one)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        return run_check(args.stack, args.metrics)
    try:
        stack = load_stack(args.stack)
        if args.metrics:
            address = check_address(args.metrics, "--metrics")
            stack = replace(stack, metrics=replace(stack.metrics, address=address))
    except ConfigError as exc:
        print(f"m2bridge up: {exc}", file=sys.stderr)
        return 1
    if args.daemon:
        return _start_daemon(args, stack)
    return run_foreground(stack, args.pid_file, args.log_level, args.log_file)


def run_foreground(
    stack: StackConfig, pid_file: str | None, log_level: str, log_file: str | None = None
) -> int:
    """Run the supervisor in this process; returns its exit code."""
    from m2bridge.supervisor.arbiter import Supervisor
    from m2bridge.supervisor.rundir import remove_pid_file, write_pid_file

    reopen = None
    if log_file:
        log_path = Path(log_file).resolve()
        try:
            redirect_output(log_path)
        except OSError as exc:
            print(f"m2bridge up: cannot open log file {log_path}: {exc.strerror}", file=sys.stderr)
            return 1
        reopen = functools.partial(reopen_output, log_path)
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    pid_path = Path(pid_file).resolve() if pid_file else None
    try:
        if pid_path is not None:
            write_pid_file(pid_path)
        return Supervisor(stack, reopen_log=reopen).run()
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 1
    finally:
        if pid_path is not None:
            remove_pid_file(pid_path)


def redirect_output(path: Path) -> None:
    """Point stdout and stderr (fds 1 and 2) at ``path``, appending.

    Raises:
        OSError: the file cannot be opened; nothing changed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def reopen_output(path: Path) -> None:
    """SIGUSR1: open ``path`` again (logrotate renamed it); on failure keep the old file."""
    try:
        redirect_output(path)
    except OSError as exc:
        log.error("cannot reopen log file %s: %s", path, exc.strerror)


def _start_daemon(args: argparse.Namespace, stack: StackConfig) -> int:
    """Start ``m2bridge up`` again in a new session, logging to a file; wait until it answers."""
    from m2bridge.supervisor.rundir import prepare_rundir

    try:
        rundir = prepare_rundir(stack.rundir)
    except ConfigError as exc:
        print(f"m2bridge up: {exc}", file=sys.stderr)
        return 1
    log_file = Path(args.log_file or rundir / "up.log").resolve()
    argv = [sys.executable, "-m", "m2bridge", "up", str(Path(args.stack).resolve())]
    argv += ["--log-level", args.log_level, "--log-file", str(log_file)]
    if args.pid_file:
        argv += ["--pid-file", str(Path(args.pid_file).resolve())]
    if args.metrics:
        argv += ["--metrics", args.metrics]
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    if _wait_answering(proc, stack):
        print(f"m2bridge up: supervisor running as pid {proc.pid}; logs in {log_file}")
        return 0
    print(f"m2bridge up: the supervisor did not start; see {log_file}:", file=sys.stderr)
    print(_tail(log_file), file=sys.stderr)
    return 1


def _wait_answering(proc: subprocess.Popen[bytes], stack: StackConfig) -> bool:
    from m2bridge.supervisor.client import ControlClient

    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    with ControlClient(stack.control.endpoint, timeout=1.0, token=stack.control.token) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                client.call("status")
            except ControlError:
                time.sleep(0.1)
                continue
            return True
    return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------- up --check


@dataclass(frozen=True)
class Check:
    """One line of ``up --check``: what was checked, and why it failed (None: it passed)."""

    what: str
    error: str | None = None

    def line(self) -> str:
        return f"ok: {self.what}" if self.error is None else f"error: {self.error}"


#: Run in a subprocess, in the order ``serve`` does: parse ``serve ARGS`` (``--config`` and
#: ``--handler`` are read), apply ``--chdir``/``--pythonpath``/``--env``, import the app.
#: Prints the reason and exits 1 when it fails.
_IMPORT_CHECK = """\
import sys
from m2bridge import loader
from m2bridge.cli import make_parser
from m2bridge.cli.serve import build_config
from m2bridge.errors import M2BridgeError
try:
    config = build_config(make_parser().parse_args(sys.argv[1:]))
    if hasattr(loader, "prepare"):  # serve --chdir, --pythonpath, --env
        loader.prepare(config.chdir, config.pythonpath, config.env)
    loader.load_app(config.app)
except M2BridgeError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def run_check(path: str, metrics: str | None) -> int:
    """``up --check``: print one line per check; 0 when every check passed, else 1."""
    failed = total = 0
    for check in check_stack(path, metrics):
        print(check.line(), flush=True)
        total += 1
        failed += check.error is not None
    if failed:
        print(f"m2bridge up --check: {failed} of {total} checks failed")
        return 1
    print(f"m2bridge up --check: all {total} checks passed")
    return 0


def check_stack(path: str, metrics: str | None = None) -> Iterator[Check]:
    """Every check of ``up --check`` on the stack file ``path``; nothing is started or bound.

    Mongrel2 configs are loaded into a temporary directory standing in for the run directory
    (which is not created), removed afterwards.
    """
    try:
        stack = load_stack(path)
        if metrics:
            address = check_address(metrics, "--metrics")
            stack = replace(stack, metrics=replace(stack.metrics, address=address))
    except ConfigError as exc:
        yield Check(f"stack {path}", str(exc))
        return
    count = len(stack.watchers)
    yield Check(f"stack {path}: {count} watcher{'s' * (count != 1)}, every $(...) resolves")
    yield from _check_addresses(stack)
    with tempfile.TemporaryDirectory(prefix="m2bridge-check-") as tmp:
        rundir = Path(tmp)
        loaded = {}
        for spec in stack.watchers.values():
            if spec.mongrel2 is not None:
                check, server = _check_mongrel2(spec, rundir)
                if server is not None:
                    loaded[spec.name] = server
                yield check
        yield from _check_listeners(loaded)
        for spec in stack.watchers.values():
            if spec.mongrel2 is None:
                # a config that failed has been reported: do not report it again here
                peers = tuple(peer for peer in spec.mongrel2_peers if peer.name in loaded)
                yield from _check_command(replace(spec, mongrel2_peers=peers), stack, rundir)


def _check_addresses(stack: StackConfig) -> Iterator[Check]:
    """The metrics, statsd, web console and socket addresses: HOST:PORT with a known host."""
    found = {"metrics.address": stack.metrics.address, "metrics.statsd": stack.metrics.statsd}
    for spec in stack.watchers.values():
        command = m2bridge_command(spec.cmd)
        if command is not None and command[0] == "web" and "--bind" in command[1][:-1]:
            args = command[1]
            found[f"watchers.{spec.name} (web --bind)"] = args[args.index("--bind") + 1]
    for name, sock in stack.sockets.items():
        if sock.host is not None:
            found[f"sockets.{name}"] = f"{sock.host}:{sock.port}"
    for where, address in found.items():
        if address is not None:
            yield _check_host(where, address)


def _check_host(where: str, address: str) -> Check:
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        check_address(address, where)
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except ConfigError as exc:
        return Check(where, str(exc))
    except (OSError, UnicodeError) as exc:
        return Check(where, f"{where}: cannot resolve host {host!r} of {address!r}: {exc}")
    return Check(f"{where} {address}")


def _check_listeners(servers: dict[str, ServerRow]) -> Iterator[Check]:
    """Two Mongrel2 watchers whose servers would listen on one address."""
    from m2bridge.supervisor.mongrel2_watcher import listener_clashes

    for name, problem in listener_clashes(servers):
        yield Check(f"watchers.{name}", problem)


def _check_mongrel2(spec: WatcherSpec, rundir: Path) -> tuple[Check, ServerRow | None]:
    """Load the config as the watcher would (``Mongrel2Launcher.prepare``), into ``rundir``."""
    from m2bridge.supervisor.mongrel2_watcher import Mongrel2Launcher

    where = f"watchers.{spec.name}.config"
    launcher = Mongrel2Launcher(spec, rundir)
    try:
        launcher.prepare()
    except ConfigError as exc:
        return Check(where, str(exc)), None
    server = launcher.server
    assert server is not None
    assert spec.mongrel2 is not None
    return Check(
        f"{where} {spec.mongrel2.config}: server {server.name!r} ({server.uuid}) "
        f"on {server.bind_addr}:{server.port}, server.daemonize = 0"
    ), server


def _check_command(spec: WatcherSpec, stack: StackConfig, rundir: Path) -> Iterator[Check]:
    """Build the command as the supervisor would; its program and working directory must
    exist; an ``m2bridge serve`` app must import."""
    from m2bridge.supervisor.launcher import CommandLauncher

    where = f"watchers.{spec.name}"
    fds = {name: 3 + index for index, name in enumerate(stack.sockets)}
    try:
        command = CommandLauncher(spec, fds, rundir / "stats").command(1)
    except ConfigError as exc:
        yield Check(where, str(exc))
        return
    if not Path(command.cwd).is_dir():
        yield Check(where, f"{where}.working_dir: no such directory {command.cwd}")
        return
    program = command.argv[0]
    if "/" in program:
        found = os.access(Path(command.cwd, program), os.X_OK)
    else:
        found = shutil.which(program, path=command.env.get("PATH", os.defpath)) is not None
    if not found:
        yield Check(where, f"{where}.cmd: no such program {program!r}")
        return
    yield Check(f"{where}.cmd: {program} found")
    serve = m2bridge_command(command.argv)
    if serve is not None and serve[0] == "serve":
        yield _check_app(where, command.argv, serve[1], command.env, command.cwd)


def _check_app(
    where: str, argv: tuple[str, ...], args: tuple[str, ...], env: Mapping[str, str], cwd: str
) -> Check:
    """Import the app of ``m2bridge serve ARGS`` in a fresh interpreter, in the worker's
    directory and environment (importing runs user code: never in this process)."""
    python = _python_of(argv)
    app = args[0] if args else "?"
    try:
        result = subprocess.run(
            [python, "-c", _IMPORT_CHECK, "serve", *args],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_IMPORT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Check(
            where, f"{where}.cmd: app {app} did not import in {CHECK_IMPORT_TIMEOUT:.0f} s"
        )
    except OSError as exc:
        return Check(where, f"{where}.cmd: cannot run {python}: {exc.strerror}")
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        return Check(where, f"{where}.cmd: app {app}: {reason}")
    return Check(f"{where}.cmd: app {app} imports")


def _python_of(argv: tuple[str, ...]) -> str:
    """The interpreter of ``PYTHON -m m2bridge ...``; this one for the ``m2bridge`` script."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] == "m2bridge":
        return argv[0]
    return sys.executable
