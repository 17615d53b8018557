"""Which Mongrel2 servers would listen on one address: legal in a config, fatal in one stack.

Mongrel2 runs one server per process (``mongrel2 DB UUID``), so a config may hold several
servers on the same port: only the one started is bound. Two servers that are both started
(two mongrel2 watchers of one stack) cannot share a listener: the second fails to bind.
``clashes`` finds those pairs; a bind address of ``0.0.0.0``, ``::``, ``*`` or empty covers
every address of its port.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

#: Bind addresses that listen on every address of their port.
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


class Listener(Protocol):
    """Anything with a server's ``bind_addr`` and ``port`` (a ``Server``, a database row)."""

    @property
    def bind_addr(self) -> str: ...

    @property
    def port(self) -> int: ...


L = TypeVar("L", bound=Listener)


def same_listener(a: Listener, b: Listener) -> bool:
    """True when ``a`` and ``b`` cannot both be bound: one port, and one address or a wildcard."""
    if a.port != b.port:
        return False
    return a.bind_addr == b.bind_addr or bool({a.bind_addr, b.bind_addr} & WILDCARDS)


def clashes(servers: Sequence[L]) -> list[tuple[L, L]]:
    """Each server that would not bind, paired with the first earlier one it clashes with."""
    found = []
    for index, server in enumerate(servers):
        first = next((s for s in servers[:index] if same_listener(s, server)), None)
        if first is not None:
            found.append((first, server))
    return found
