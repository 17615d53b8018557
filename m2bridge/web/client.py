"""GreenClient: the console's connection to a supervisor's control endpoint, for gevent.

The same messages as ``m2bridge.supervisor.client.ControlClient`` (``supervisor.control``),
on a ``zmq.green`` REQ socket so a call blocks only its greenlet. The collector and the
command route share it: a lock keeps one request in flight at a time, as REQ requires. zmq.green
ignores RCVTIMEO, so a ``gevent.Timeout`` bounds each exchange; after one the REQ socket is in
the wrong state for the next send, so it is closed and recreated.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import gevent
import zmq.green as zmq
from gevent.lock import Semaphore

from m2bridge.errors import ControlError
from m2bridge.supervisor import control
from m2bridge.supervisor.control import Errno


class GreenClient:
    """A connection to one supervisor (``close`` it when done)."""

    def __init__(self, endpoint: str, timeout: float = 5.0, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.token = token
        self._ids = itertools.count(1)
        self._context = zmq.Context()
        self._socket: zmq.Socket[bytes] | None = None
        self._lock = Semaphore()

    def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``command`` in the supervisor and return its data.

        Raises:
            ControlError: the command failed (its errno), or the supervisor did not answer
                within ``timeout`` (errno UNREACHABLE).
        """
        request = control.ControlRequest(next(self._ids), command, args or {}, self.token)
        with self._lock:
            reply = self._exchange(control.encode_request(request))
        response = control.decode_response(reply)
        if response.id != request.id:
            raise ControlError("response does not match the request", Errno.BAD_MESSAGE)
        if not response.ok:
            raise ControlError(response.error, response.errno)
        return response.data

    def _exchange(self, data: bytes) -> bytes:
        path = self.endpoint.removeprefix("ipc://")
        if path != self.endpoint and not Path(path).exists():
            raise ControlError(f"no supervisor at {self.endpoint}", Errno.UNREACHABLE)
        sock = self._connect()
        timeout = gevent.Timeout(self.timeout)
        timeout.start()
        try:
            sock.send(data)
            return sock.recv()
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._reset()
            raise ControlError(
                f"no answer from {self.endpoint} within {self.timeout:g} s", Errno.UNREACHABLE
            ) from None
        finally:
            timeout.close()

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            try:
                sock.connect(self.endpoint)
            except zmq.ZMQError as exc:
                sock.close(linger=0)
                raise ControlError(
                    f"cannot connect to {self.endpoint}: {exc}", Errno.UNREACHABLE
                ) from None
            self._socket = sock
        return self._socket

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        self._reset()
        self._context.term()
