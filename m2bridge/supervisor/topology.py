"""Which processes a stack may run side by side on Mongrel2: the topology guard.

Mongrel2's PUSH deals one connection's requests round-robin over the workers connected to it,
so several ``m2bridge serve`` workers straight on Mongrel2 reorder and drop pipelined answers
(docs/decisions/0001-multi-worker-topology.md); the relay keeps a connection on one worker
and runs as one process. ``up``, ``incr`` and ``up --check`` all ask this module.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from m2bridge.errors import ConfigError

if TYPE_CHECKING:
    from m2bridge.supervisor.stack import WatcherSpec

TOPOLOGY_DECISION = "docs/decisions/0001-multi-worker-topology.md"


def m2bridge_command(cmd: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """``(subcommand, its arguments)`` when ``cmd`` runs ``m2bridge SUBCOMMAND`` (the
    ``m2bridge`` script or ``python -m m2bridge``), else None."""
    for index, token in enumerate(cmd[:-1]):
        if os.path.basename(token) == "m2bridge":
            return cmd[index + 1], cmd[index + 2 :]
    return None


def has_flag(args: tuple[str, ...], *flags: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args for flag in flags)


def serves_straight_from_mongrel2(cmd: tuple[str, ...]) -> bool:
    """Whether ``cmd`` is an ``m2bridge serve`` worker whose PULL connects straight to
    Mongrel2: the ZeroMQ path (no ``--fd``/``--bind``) without ``--relay``."""
    command = m2bridge_command(cmd)
    if command is None or command[0] != "serve":
        return False
    return not has_flag(command[1], "--relay", "--fd", "--bind")


def runs_the_relay(cmd: tuple[str, ...]) -> bool:
    """Whether ``cmd`` runs ``m2bridge relay`` (one process binds its endpoint)."""
    command = m2bridge_command(cmd)
    return command is not None and command[0] == "relay"


def topology_error(name: str, cmd: tuple[str, ...], count: int) -> str | None:
    """Why watcher ``name`` may not run ``count`` processes of ``cmd``, or None.

    Mongrel2's PUSH deals one connection's requests round-robin over the workers connected to
    it, so several such workers reorder and drop pipelined answers; and two relays cannot
    bind one endpoint.
    """
    if count > 1 and serves_straight_from_mongrel2(cmd):
        return (
            f"{name}: {count} 'm2bridge serve' processes connected straight to Mongrel2 "
            "would reorder and drop pipelined answers; run them behind 'm2bridge relay' "
            f"(serve --relay, or serve --workers N) or run one ({TOPOLOGY_DECISION})"
        )
    if count > 1 and runs_the_relay(cmd):
        return f"{name}: an 'm2bridge relay' watcher runs one process (it binds one endpoint)"
    return None


def check_topology(spec: WatcherSpec) -> None:
    """Refuse a watcher that would run several direct workers or several relays.

    Raises:
        ConfigError: ``topology_error`` names the watcher and the way out.
    """
    problem = topology_error(f"watchers.{spec.name}.numprocesses", spec.cmd, spec.numprocesses)
    if problem is not None:
        raise ConfigError(problem)
