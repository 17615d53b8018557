"""Credit accounting of Mongrel2's ``download.flow_control`` (one window per connection).

With ``download.flow_control=1`` the first request of a connection carries
``DOWNLOAD_CREDITS: 102400`` and Mongrel2 sends a ``{"type":"credits"}`` notice with
``DOWNLOAD_CREDITS: N`` each time it wrote N bytes of ours to the client. A handler must keep
the bytes it sent and Mongrel2 has not confirmed within the window, and must never send a
single message of 102400 bytes or more: Mongrel2 drops such a connection at once
(MONGREL2.md 3.3). ``CreditWindow`` says how much of a payload may leave now; the caller
waits for credits when the answer is 0.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

#: Largest reply message sent on a flow-controlled connection (well below the fatal 102400).
MAX_PIECE = 65536
#: The window Mongrel2 1.12.2 grants (``DOWNLOAD_CREDITS`` of a connection's first request).
DEFAULT_CREDITS = 102400


def parse_credits(value: object) -> int | None:
    """The ``DOWNLOAD_CREDITS`` header of a request as a positive int, or None if unusable."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > 12:
        return None
    credits = int(value)
    return credits if credits > 0 else None


class CreditWindow:
    """Bytes a connection may still send before Mongrel2 confirms earlier ones.

    Attributes:
        available: credits left (bytes that may be sent now).
        size: the window granted with the connection's first request.
    """

    __slots__ = ("available", "size")

    def __init__(self, credits: int) -> None:
        self.size = credits
        self.available = credits

    def grant(self, credits: int) -> None:
        """Mongrel2 confirmed ``credits`` bytes: they may be sent again (never beyond ``size``)."""
        self.available = min(self.size, self.available + max(credits, 0))

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` bytes for one message; return how many (0: wait)."""
        allowed = min(wanted, self.available, MAX_PIECE)
        if allowed <= 0:
            return 0
        self.available -= allowed
        return allowed

    @property
    def idle(self) -> bool:
        """Every byte sent has been confirmed (the client read everything)."""
        return self.available >= self.size
