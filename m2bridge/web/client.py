"""GreenClient: the console's connection to a supervisor's control endpoint, for gevent.

The same messages as ``m2bridge.supervisor.client.ControlClient`` (``supervisor.control``),
on a ``zmq.green`` REQ socket so a call blocks only its greenlet. The collector and the
command route share it: a lock keeps one request in flight at a time, as REQ requires. zmq.green
ignores RCVTIMEO, so a ``gevent.Timeout`` bounds each exchange; after one the REQ socket is in
the wrong state for the next send, so it is closed and recreated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
import zmq.green as zmq
from gevent.lock import Semaphore

from m2bridge.errors import ControlError
from m2bridge.supervisor.client import ControlClient
from m2bridge.supervisor.control import Errno


class GreenClient(ControlClient):
    """A connection to one supervisor (``close`` it when done)."""

    def __init__(self, endpoint: str, timeout: float = 5.0, token: str | None = None) -> None:
        super().__init__(endpoint, timeout, token)
        self._lock = Semaphore()

    def make_context(self) -> zmq.Context[Any]:
        return zmq.Context()

    def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``command`` in the supervisor and return its data (one call at a time).

        Raises:
            ControlError: the command failed (its errno), or the supervisor did not answer
                within ``timeout`` (errno UNREACHABLE).
        """
        with self._lock:
            return super().call(command, args)

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
