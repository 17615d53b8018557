"""``m2-zmq`` and ``fd`` the way users run them: one ``m2bridge up`` supervisor.

For ``m2-zmq`` the stack file has a ``mongrel2`` watcher (the bench's own config, loaded by the
supervisor), a ``relay`` watcher (``m2bridge relay`` on Mongrel2's send_spec) and a watcher of
``workers`` ``m2bridge serve --relay`` processes, as the demo stack (``examples/stack.toml``);
for ``fd`` a socket the supervisor binds and a watcher of ``m2bridge serve --fd $(sockets.web)``
processes. Every
process of the stack is a child of the supervisor, which is stopped by PID (it stops them).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .m2stacks import Endpoints, config_text, relay_argv, zmq_worker_argv
from .stacks import HOST, ROOT, Stack, free_port, url_for
from .workload import WORKLOADS

UP = ("-m", "m2bridge", "up", "--log-level", "warning")


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def stack_header(rundir: Path) -> str:
    """The ``[stack]`` table and the environment every watcher gets."""
    return f"[stack]\nrundir = {json.dumps(str(rundir))}\n"


def worker_watcher(name: str, argv: Sequence[str], workers: int, sockets: bool = False) -> str:
    """A ``[watchers.NAME]`` table running ``workers`` copies of ``argv`` from the repo root."""
    lines = [
        f"[watchers.{name}]",
        f"cmd = {_toml_list(argv)}",
        f"numprocesses = {workers}",
        f"working_dir = {json.dumps(str(ROOT))}",
        f"env = {{ PYTHONPATH = {json.dumps(str(ROOT))} }}",
        "graceful_timeout = 3",
    ]
    if sockets:
        lines.append('use_sockets = ["web"]')
    return "\n".join(lines) + "\n"


def relay_watcher(ends: Endpoints, relay: str) -> str:
    """The ``[watchers.relay]`` table: Mongrel2's PUSH -> the relay -> workers by credit."""
    return worker_watcher("relay", relay_argv("$(python)", ends, relay), 1) + "priority = 5\n"


def zmq_stack_text(name: str, app: str, workers: int, chroot: Path, ends: Endpoints) -> str:
    """The stack file of ``name``: Mongrel2, ``m2bridge relay`` and ``workers`` ZeroMQ workers
    that take their requests from the relay (replies go straight to Mongrel2)."""
    relay_spec = f"ipc://{chroot.parent / (name + '.ipc')}"
    argv = zmq_worker_argv("$(python)", app, ends, chroot, relay_spec)
    mongrel2 = (
        "[watchers.mongrel2]\n"
        'type = "mongrel2"\n'
        f"config = {json.dumps(str(chroot / 'mongrel2.conf'))}\n"
        'server = "main"\n'
        # the chroot (and so the upload temp files the workers read) stays where --m2-chroot says
        f"working_dir = {json.dumps(str(chroot))}\n"
    )
    text = stack_header(chroot.parent / f"{name}-run") + mongrel2
    text += relay_watcher(ends, relay_spec)
    return text + worker_watcher("app", argv, workers)


def fd_stack_text(app: str, workers: int, rundir: Path, port: int) -> str:
    """The stack file of ``fd``: one supervisor-bound socket shared by ``workers`` workers."""
    argv = ["$(python)", "-m", "m2bridge", "serve", WORKLOADS[app].app]
    argv += ["--fd", "$(sockets.web)", "--log-level", "warning"]
    sockets = f'[sockets.web]\nhost = "{HOST}"\nport = {port}\nbacklog = 1024\n'
    return stack_header(rundir) + sockets + worker_watcher("app", argv, workers, sockets=True)


def _start_up(name: str, app: str, stack_file: Path, url: str, how: str) -> Stack:
    stack = Stack(name, app, url, how, stop_signal=signal.SIGTERM)
    argv = [sys.executable, *UP, str(stack_file)]
    stack.start("supervisor", argv, stack_file.with_suffix(".log"))
    ctl = [sys.executable, "-m", "m2bridge", "ctl", "-s", str(stack_file), "--timeout", "5"]
    stack.stats_argv = [*ctl, "--json", "stats"]
    return stack


def _start_m2(name: str, app: str, workers: int, workdir: Path) -> Stack:
    chroot = workdir / name
    chroot.mkdir(parents=True, exist_ok=True)
    ends = Endpoints.on_free_ports()
    port = free_port()
    (chroot / "mongrel2.conf").write_text(config_text(port, ends.conf()))
    stack_file = workdir / f"{name}.toml"
    stack_file.write_text(zmq_stack_text(name, app, workers, chroot, ends))
    how = (
        f"`m2bridge up`: supervisor + mongrel2 + `m2bridge relay` + {workers} x "
        "`m2bridge serve --relay` (ZeroMQ)"
    )
    return _start_up(name, app, stack_file, url_for(port, app), how)


def start_zmq_supervised(app: str, workers: int, workdir: Path) -> Stack:
    """``m2-zmq``: ``m2bridge up`` with Mongrel2, ``m2bridge relay`` and ``workers``
    ``m2bridge serve --relay``, as the demo stack (``examples/stack.toml``) runs them."""
    return _start_m2("m2-zmq", app, workers, workdir)


def start_fd_supervised(app: str, workers: int, workdir: Path) -> Stack:
    """``m2bridge up``: a supervisor-bound socket and ``workers`` ``m2bridge serve --fd``."""
    port = free_port()
    stack_file = workdir / "fd.toml"
    stack_file.write_text(fd_stack_text(app, workers, workdir / "fd-run", port))
    how = f"`m2bridge up`: supervisor socket + {workers} x `m2bridge serve --fd` (gevent HTTP)"
    return _start_up("fd", app, stack_file, url_for(port, app), how)
