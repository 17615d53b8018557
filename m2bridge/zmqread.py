"""Read one frame from a ZeroMQ socket without blocking: the frame, or None when it has none.

pyzmq says "empty" by raising ``zmq.Again``, about 25,000 instructions (more than parsing a
request), and a worker (``worker.channel``) or the relay (``relay.router``) meets an empty
socket on every wake-up. ``read_nowait`` uses the
optional compiled ``_zmqread`` (built by setup.py like the fast path's helpers) when it could
bind itself to the very libzmq pyzmq loaded: the same non-blocking read, None instead of the
exception. Otherwise, and for any error but "empty", it reads through pyzmq, so the behaviour
is pyzmq's (tests/component/test_zmqread.py holds both to it). ``describe()`` is the
log line of a worker.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import zmq
from zmq.backend import Socket as BackendSocket

#: pyzmq's compiled recv, below the sugar layer (see channel.py).
_raw_recv = BackendSocket.recv


def libzmq_paths(maps: str = "/proc/self/maps") -> set[str]:
    """The libzmq files mapped into this process (pyzmq's, once zmq is imported)."""
    try:
        with open(maps) as lines:
            fields = [line.split(maxsplit=5) for line in lines]
    except OSError:
        return set()
    paths = {parts[5].strip() for parts in fields if len(parts) == 6}
    return {path for path in paths if os.path.basename(path).startswith("libzmq")}


def read_with_pyzmq(socket: zmq.Socket[Any]) -> bytes | None:
    """One frame, or None when the socket has none now (pyzmq's recv, zmq.Again caught)."""
    try:
        frame: bytes = _raw_recv(socket, zmq.NOBLOCK)
    except zmq.Again:
        return None
    return frame


def _bind_compiled() -> tuple[ModuleType | None, str]:
    """The compiled reader bound to pyzmq's libzmq, or None and why not."""
    try:
        from m2bridge import _zmqread  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, str(exc)
    paths = libzmq_paths()
    if len(paths) != 1:
        return None, f"expected one libzmq in memory, found {sorted(paths) or 'none'}"
    try:
        _zmqread.bind(paths.pop())
    except OSError as exc:
        return None, str(exc)
    return _zmqread, ""


compiled, MISSING = _bind_compiled()
_compiled_read = None if compiled is None else compiled.read


def read_nowait(socket: zmq.Socket[Any]) -> bytes | None:
    """One frame, or None when the socket has none now; other errors raise like pyzmq's."""
    if _compiled_read is None:
        return read_with_pyzmq(socket)
    frame = _compiled_read(socket.underlying)
    if type(frame) is int:  # another error than "empty": pyzmq raises the matching one
        return read_with_pyzmq(socket)
    return frame  # type: ignore[no-any-return]


def describe() -> str:
    """One line for the worker's log: how empty reads are detected, and why."""
    if compiled is not None:
        return "socket reads: compiled (m2bridge._zmqread, no exception when empty)"
    return f"socket reads: pyzmq (zmq.Again when empty; the compiled reader: {MISSING})"
