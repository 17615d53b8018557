"""The control endpoint: a ZeroMQ REP socket polled from the arbiter's loop.

Bound on ``ipc://<rundir>/m2bridge.ctl`` (directory 0700, socket 0600: other local users
cannot connect) or, only with a shared token, on ``tcp://``. Each request is decoded, checked,
dispatched to the command registry and answered at once: no command blocks the loop.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor import control
from m2bridge.supervisor.control import Errno
from m2bridge.supervisor.stack import ControlSpec

log = logging.getLogger("m2bridge.supervisor")

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]
#: requests answered per poll at most, so output relaying and reaping keep their turn.
BATCH = 32
#: longest unix socket path (sun_path is 108 bytes with the terminating NUL).
MAX_IPC_PATH = 107


class ControlServer:
    """REP socket + dispatch; ``poll`` also waits on the arbiter's other fds."""

    def __init__(self, spec: ControlSpec, handler: Handler) -> None:
        self.endpoint = spec.endpoint
        self.token = spec.token.encode() if spec.token else None
        self.handler = handler
        self.handled = 0
        self.ipc_path = _ipc_path(spec.endpoint)
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, control.MAX_MESSAGE)
        try:
            self._bind()
        except (zmq.ZMQError, OSError) as exc:
            self.close()
            raise ConfigError(f"control.endpoint: cannot bind {spec.endpoint}: {exc}") from exc

    def _bind(self) -> None:
        if self.ipc_path is None:
            self.socket.bind(self.endpoint)
            return
        old_umask = os.umask(0o077)
        try:
            self.socket.bind(self.endpoint)
        finally:
            os.umask(old_umask)
        os.chmod(self.ipc_path, 0o600)

    def poll(
        self,
        fds: Sequence[int | zmq.Socket[bytes]],
        timeout: float,
        writable: Sequence[int] = (),
    ) -> list[int | zmq.Socket[bytes]]:
        """Wait up to ``timeout`` s for a request, one of ``fds`` (fds or zmq sockets) to read
        or one of ``writable`` to take output; answer pending requests.

        Returns:
            The items of ``fds`` that are readable, then those of ``writable`` that are writable.
        """
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        for fd in fds:
            poller.register(fd, zmq.POLLIN)
        for fd in writable:
            poller.register(fd, zmq.POLLOUT)
        events = dict(poller.poll(max(0, int(timeout * 1000))))
        if self.socket in events:
            self._serve_pending()
        ready: list[int | zmq.Socket[bytes]] = [fd for fd in fds if fd in events]
        ready += [fd for fd in writable if events.get(fd, 0) & zmq.POLLOUT]
        return ready

    def _serve_pending(self) -> None:
        for _ in range(BATCH):
            try:
                data = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.socket.send(self.respond(data))

    def respond(self, data: bytes) -> bytes:
        """One request's bytes -> the response's bytes (never raises)."""
        try:
            request = control.decode_request(data)
        except ControlError as exc:
            log.warning("control: bad request: %s", exc)
            return _error(control.request_id(data), exc)
        if self.token is not None and not hmac.compare_digest(
            (request.token or "").encode(), self.token
        ):
            log.warning("control: refused %r: missing or wrong token", request.command)
            return _error(request.id, ControlError("missing or wrong token", Errno.UNAUTHORIZED))
        self.handled += 1
        try:
            result = self.handler(request.command, request.args)
        except ControlError as exc:
            return _error(request.id, exc)
        except Exception as exc:  # a bug in a command must not take the supervisor down
            log.exception("control: %s failed", request.command)
            return _error(request.id, ControlError(f"internal error: {exc!r}"))
        return control.encode_response(control.ok(request.id, result))

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()
        if self.ipc_path is not None:
            Path(self.ipc_path).unlink(missing_ok=True)


def _error(msg_id: int, exc: ControlError) -> bytes:
    return control.encode_response(control.error(msg_id, str(exc), exc.errno))


def _ipc_path(endpoint: str) -> str | None:
    if not endpoint.startswith("ipc://"):
        return None
    path = endpoint.removeprefix("ipc://")
    if len(os.fsencode(path)) > MAX_IPC_PATH:
        raise ConfigError(
            f"control.endpoint: ipc path longer than {MAX_IPC_PATH} bytes: {path} "
            "(set [stack] rundir to a shorter directory)"
        )
    return path
