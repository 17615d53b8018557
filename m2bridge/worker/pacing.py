"""How fast one stream of replies may go to Mongrel2: a token bucket, with the worker's pace.

Mongrel2 drops a connection silently once more than 16 messages are queued for it
(MONGREL2.md 3.3), so a connection's writes, and a hub's broadcasts, take one token per
message from a bucket of ``BURST`` tokens refilled one per ``MERGE_INTERVAL`` seconds
(``connection`` holds the measurements behind these numbers). What may not leave at once is
merged into a later message (``connection.Connection``) or waits (``wsapp.Broadcaster``).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

#: Messages one stream may send back to back before merging starts.
BURST = 4
#: Seconds per message once the burst is spent (the bucket refills one token per interval).
MERGE_INTERVAL = 0.005


class TokenBucket:
    """``burst`` tokens, refilled at one per ``interval`` seconds of ``clock``."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "interval")

    def __init__(
        self,
        burst: int = BURST,
        interval: float = MERGE_INTERVAL,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.burst = float(burst)
        self.interval = interval
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def take(self, force: bool = False) -> bool:
        """Take one token if there is one (with ``force``: in any case, going into debt).

        Returns:
            Whether a token was taken.
        """
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) / self.interval)
        self._stamp = now
        if tokens >= 1.0 or force:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def spent_at(self, stamp: float) -> None:
        """A fresh bucket: one token was taken at ``stamp`` (a clock reading in the past)."""
        self._tokens = self.burst - 1.0
        self._stamp = stamp

    def wait_time(self) -> float:
        """Seconds from the last ``take`` until a token is there again (0: there is one)."""
        return max(0.0, (1.0 - self._tokens) * self.interval)
