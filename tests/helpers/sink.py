"""What a test's stand-in for a worker channel (a ``worker.sink.Sink``) shares: not behind the
relay, so no message is numbered and no connection reported finished."""

from __future__ import annotations

from collections.abc import Container


class NotRelayed:
    """The ``Sink`` members of a channel straight on Mongrel2 (see ``channel.Channel``)."""

    read_seq = 0
    done: list[tuple[int, int]] | None = None
    kept: Container[tuple[int, int]] = ()

    def done_pending(self) -> None:
        """Nothing is reported straight on Mongrel2."""
