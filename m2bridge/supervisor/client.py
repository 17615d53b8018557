"""ControlClient: send one command to a running supervisor and get its data back.

REQ socket with a receive timeout and ``linger=0``; after a timeout the REQ socket is in the
wrong state for the next send, so it is closed and recreated.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq

from m2bridge.errors import ControlError
from m2bridge.supervisor import control
from m2bridge.supervisor.control import Errno

DEFAULT_TIMEOUT = 5.0


class ControlClient:
    """A connection to one supervisor's control endpoint (use as a context manager).

    Subclasses may bring another ``zmq`` flavour (``web.client.GreenClient``: ``zmq.green``)
    through ``make_context`` and bound an exchange their own way in ``_exchange``.
    """

    def __init__(
        self, endpoint: str, timeout: float = DEFAULT_TIMEOUT, token: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.token = token
        self._ids = itertools.count(1)
        self._context = self.make_context()
        self._socket: zmq.Socket[bytes] | None = None

    def make_context(self) -> zmq.Context[Any]:
        return zmq.Context()

    def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``command`` in the supervisor.

        Returns:
            The command's data.

        Raises:
            ControlError: the command failed (its errno), or the supervisor did not answer
                within ``timeout`` (errno UNREACHABLE).
        """
        request = control.ControlRequest(next(self._ids), command, args or {}, self.token)
        response = control.decode_response(self._exchange(control.encode_request(request)))
        if response.id != request.id:
            raise ControlError("response does not match the request", Errno.BAD_MESSAGE)
        if not response.ok:
            raise ControlError(response.error, response.errno)
        return response.data

    def _exchange(self, data: bytes) -> bytes:
        if self.endpoint.startswith("ipc://"):
            self._check_ipc_path(Path(self.endpoint.removeprefix("ipc://")))
        sock = self._connect()
        try:
            sock.send(data)
            return sock.recv()
        except zmq.Again:
            self._reset()
            raise ControlError(
                f"no answer from {self.endpoint} within {self.timeout:g} s", Errno.UNREACHABLE
            ) from None

    def _check_ipc_path(self, path: Path) -> None:
        """Fail at once where zmq would only time out: no socket, or one this user may not use.

        Raises:
            ControlError: errno UNREACHABLE, with the endpoint and the reason.
        """
        try:
            path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ControlError(f"no supervisor at {self.endpoint}", Errno.UNREACHABLE) from None
        except PermissionError:
            raise self._refused() from None
        except OSError as exc:
            raise ControlError(
                f"cannot reach {self.endpoint}: {exc.strerror}", Errno.UNREACHABLE
            ) from None
        if not os.access(path, os.R_OK | os.W_OK):
            raise self._refused()

    def _refused(self) -> ControlError:
        return ControlError(
            f"cannot reach {self.endpoint}: permission denied (run ctl as the supervisor's user)",
            Errno.UNREACHABLE,
        )

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, int(self.timeout * 1000))
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
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

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
