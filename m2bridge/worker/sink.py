"""What a connection needs from the channel it came in on (``connection.Connection``): a
``channel.Channel`` or ``relay_channel.RelayChannel``, or a test's stand-in.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol


class Sink(Protocol):
    """What a connection needs from a transport channel."""

    @property
    def index(self) -> int: ...

    @property
    def recv_spec(self) -> str: ...

    @property
    def reply_ident(self) -> bytes | None: ...

    @property
    def read_seq(self) -> int: ...

    #: Behind the relay: the connections finished, ``(conn id, read_seq of its last
    #: message)``, for the relay to let go (``relay_channel``); None where nothing is reported.
    done: list[tuple[int, int]] | None
    #: Connections never reported finished: their state lives here (open WebSockets).
    kept: Container[tuple[int, int]]

    def done_pending(self) -> None: ...

    def send(self, message: bytes) -> None: ...
