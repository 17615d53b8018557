"""``m2bridge up STACK.toml``: run a whole stack (Mongrel2, handler workers, any command).

In the foreground by default: the supervisor logs to stderr, every process's output is relayed
to stdout prefixed ``name.wid | ``; with ``--log-file`` both go to that file instead, reopened
at its path on SIGUSR1 (logrotate). ``--daemon`` starts the same command detached (a fresh
interpreter in its own session, no fork), logging to ``--log-file``, and returns once the
supervisor answers on its control socket; ``--pid-file`` is written for service managers.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.stack import StackConfig, check_address, load_stack

log = logging.getLogger("m2bridge.supervisor")

LOG_FORMAT = "%(asctime)s [supervisor] %(levelname)s %(message)s"
DAEMON_START_TIMEOUT = 30.0


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run a stack file: Mongrel2, handler workers and any process, under one supervisor",
        description="Run every watcher of STACK (a TOML stack file) until TERM/INT or "
        "`m2bridge ctl quit`; control it live with `m2bridge ctl`.",
    )
    parser.add_argument("stack", metavar="STACK", help="the stack file (TOML)")
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
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
