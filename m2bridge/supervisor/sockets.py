"""Listening sockets the supervisor binds once at start and hands to watchers by fd number.

Children get them through ``Popen(pass_fds=...)``; ``$(sockets.NAME)`` is the fd number, the
same in the supervisor and in the child. The sockets stay open for the supervisor's lifetime, so
a replaced worker never leaves the port unbound.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2bridge.errors import ConfigError
from m2bridge.supervisor.stack import SocketSpec


@dataclass
class BoundSocket:
    spec: SocketSpec
    sock: socket.socket

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def address(self) -> str:
        """``host:port`` (the real port when the spec said 0) or the unix path."""
        if self.spec.path is not None:
            return f"unix:{self.spec.path}"
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def describe(self) -> dict[str, Any]:
        return {"name": self.spec.name, "fd": self.fd, "address": self.address()}


def bind_socket(spec: SocketSpec) -> BoundSocket:
    """Bind and listen.

    Raises:
        ConfigError: the address cannot be bound (the message names ``sockets.NAME``).
    """
    try:
        sock = _unix(spec) if spec.path is not None else _inet(spec)
    except OSError as exc:
        raise ConfigError(f"sockets.{spec.name}: cannot bind: {exc}") from exc
    sock.set_inheritable(False)  # passed explicitly with pass_fds, never leaked otherwise
    return BoundSocket(spec, sock)


def _inet(spec: SocketSpec) -> socket.socket:
    host = spec.host or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spec.reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, spec.port or 0))
        sock.listen(spec.backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _unix(spec: SocketSpec) -> socket.socket:
    path = Path(str(spec.path))
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # a stale socket of an earlier run
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        sock.listen(spec.backlog)
    except OSError:
        sock.close()
        raise
    return sock


def bind_all(specs: Mapping[str, SocketSpec]) -> dict[str, BoundSocket]:
    """Bind every socket; on error close those already bound and re-raise."""
    bound: dict[str, BoundSocket] = {}
    try:
        for name, spec in specs.items():
            bound[name] = bind_socket(spec)
    except ConfigError:
        close_all(bound)
        raise
    return bound


def close_all(bound: Mapping[str, BoundSocket]) -> None:
    for item in bound.values():
        item.sock.close()
        if item.spec.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(item.spec.path)
