"""The control protocol's messages, as bytes in and values out (one JSON object per message).

```
request   {"id": 7, "command": "incr", "args": {"name": "hello", "n": 1}, "token": "..."}
response  {"id": 7, "status": "ok", "data": {...}}
          {"id": 7, "status": "error", "error": "no watcher named 'x'", "errno": 5}
```
``token`` is only sent (and required) on a ``tcp://`` endpoint. ``errno`` values are stable:
scripts may test them (see ``Errno``).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from m2bridge.errors import ControlError

MAX_MESSAGE = 65536


#: Most processes one watcher may be asked to run (a typo such as ``incr w 100000`` must not
#: fork-bomb the host).
MAX_PROCESSES = 1024


class Errno(IntEnum):
    """Why a command failed."""

    COMMAND_FAILED = 1
    BAD_MESSAGE = 2
    UNKNOWN_COMMAND = 3
    BAD_ARGUMENTS = 4
    NO_SUCH_WATCHER = 5
    UNAUTHORIZED = 6
    UNREACHABLE = 7


@dataclass(frozen=True)
class ControlRequest:
    id: int
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    token: str | None = None


@dataclass(frozen=True)
class ControlResponse:
    id: int
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    errno: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def encode_request(request: ControlRequest) -> bytes:
    message: dict[str, Any] = {"id": request.id, "command": request.command, "args": request.args}
    if request.token is not None:
        message["token"] = request.token
    return json.dumps(message).encode()


def decode_request(data: bytes) -> ControlRequest:
    """Parse a request.

    Raises:
        ControlError: not a JSON object with an int ``id``, a str ``command`` and an object
            ``args`` (errno BAD_MESSAGE).
    """
    message = _load(data)
    msg_id, command, args = message.get("id"), message.get("command"), message.get("args", {})
    token = message.get("token")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        raise ControlError("request has no integer 'id'", Errno.BAD_MESSAGE)
    if not isinstance(command, str) or not command:
        raise ControlError("request has no 'command'", Errno.BAD_MESSAGE)
    if not isinstance(args, dict):
        raise ControlError("request 'args' is not an object", Errno.BAD_MESSAGE)
    if token is not None and not isinstance(token, str):
        raise ControlError("request 'token' is not a string", Errno.BAD_MESSAGE)
    return ControlRequest(msg_id, command, args, token)


def request_id(data: bytes) -> int:
    """The ``id`` of a request that failed to decode, when one can be found (else 0)."""
    try:
        msg_id = json.loads(data).get("id", 0)
    except (ValueError, AttributeError, RecursionError):
        return 0
    return msg_id if isinstance(msg_id, int) and not isinstance(msg_id, bool) else 0


def ok(msg_id: int, data: dict[str, Any]) -> ControlResponse:
    return ControlResponse(msg_id, "ok", data)


def error(msg_id: int, message: str, errno: int) -> ControlResponse:
    return ControlResponse(msg_id, "error", error=message, errno=int(errno))


def encode_response(response: ControlResponse) -> bytes:
    message: dict[str, Any] = {"id": response.id, "status": response.status}
    if response.ok:
        message["data"] = response.data
    else:
        message.update(error=response.error, errno=response.errno)
    return json.dumps(message).encode()


def decode_response(data: bytes) -> ControlResponse:
    """Parse a response.

    Raises:
        ControlError: malformed (errno BAD_MESSAGE).
    """
    message = _load(data)
    msg_id, status = message.get("id"), message.get("status")
    if not isinstance(msg_id, int) or status not in ("ok", "error"):
        raise ControlError("malformed response from supervisor", Errno.BAD_MESSAGE)
    if status == "ok":
        payload = message.get("data", {})
        if not isinstance(payload, dict):
            raise ControlError("malformed response data from supervisor", Errno.BAD_MESSAGE)
        return ok(msg_id, payload)
    errno = message.get("errno", Errno.COMMAND_FAILED)
    return error(msg_id, str(message.get("error", "")), errno if isinstance(errno, int) else 1)


def _load(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE:
        raise ControlError(f"message larger than {MAX_MESSAGE} bytes", Errno.BAD_MESSAGE)
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"message is not JSON: {exc}", Errno.BAD_MESSAGE) from exc
    if not isinstance(message, dict):
        raise ControlError("message is not a JSON object", Errno.BAD_MESSAGE)
    return message
