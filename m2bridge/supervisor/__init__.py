"""The supervisor: every process of a stack (Mongrel2, handler workers, any command) under one
live control.

Importing this package is cheap and pulls in no zmq: ``Supervisor`` and ``ControlClient`` are
loaded on first use, so the pure modules (``plan``, ``control``, ``commands``) stay pure.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m2bridge.supervisor.arbiter import Supervisor
    from m2bridge.supervisor.client import ControlClient

__all__ = ["ControlClient", "Supervisor", "relay_endpoint", "serve_workers"]


def relay_endpoint(name: str) -> str:
    """Where the relay of ``serve_workers(..., name, relay_argv)`` should bind:
    ``ipc://<runtime dir>/<name>/relay.ipc``."""
    from m2bridge.supervisor.stack import relay_endpoint as endpoint

    return endpoint(name)


def serve_workers(
    argv: list[str],
    numprocesses: int,
    graceful_timeout: float,
    name: str,
    relay_argv: list[str] | None = None,
) -> int:
    """Run ``numprocesses`` copies of ``argv`` in the foreground until TERM/INT or ``quit``,
    behind one process of ``relay_argv`` (the ``m2bridge relay`` they connect to) if given.

    ``$(wid)`` in ``argv`` becomes each process's stable slot id. The control socket is
    ``ipc://<runtime dir>/<name>/m2bridge.ctl`` (``m2bridge ctl --name NAME ...``).

    Returns:
        The exit code: 0 after a normal stop, 1 when the supervisor cannot start.
    """
    from m2bridge.errors import ConfigError
    from m2bridge.supervisor.arbiter import Supervisor
    from m2bridge.supervisor.stack import worker_stack

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s [supervisor] %(message)s")
    try:
        stack = worker_stack(argv, numprocesses, graceful_timeout, name, relay_argv)
        return Supervisor(stack).run()
    except ConfigError as exc:
        logging.getLogger("m2bridge.supervisor").error("cannot start: %s", exc)
        return 1


def __getattr__(name: str) -> Any:
    if name == "Supervisor":
        from m2bridge.supervisor.arbiter import Supervisor

        return Supervisor
    if name == "ControlClient":
        from m2bridge.supervisor.client import ControlClient

        return ControlClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
