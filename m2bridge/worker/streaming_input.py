"""``wsgi.input`` for Mongrel2's ``upload.stream``: the body is read while it arrives.

With ``upload.stream=1`` Mongrel2 sends the request with the bytes it already holds, then
sends nothing more until the handler grants credits (an extended ``ctl`` reply); each later
piece arrives as an ``UploadChunk`` carrying its offset, the last one flagged done
(MONGREL2.md 2.4). ``StreamingInput`` grants ``WINDOW`` bytes at once, then grants again what
the application has consumed, so at most about one window is ever buffered in the worker,
whatever the body's size. Reading blocks only the requesting greenlet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from gevent.event import Event

log = logging.getLogger("m2bridge.worker.streaming_input")

#: Credits granted up front and kept outstanding: bytes Mongrel2 may send ahead of the reader.
WINDOW = 65536


class ClientDisconnected(OSError):
    """Raised by a read when the client went away (or the body broke) before it was complete."""


class StreamingInput:
    """A readable binary stream fed by ``feed`` from the receiving loop.

    Attributes:
        received: body bytes that arrived so far (the next expected offset).
        done: Mongrel2 sent the last piece.
    """

    def __init__(self, initial: bytes, grant: Callable[[int], None]) -> None:
        """Args:
        initial: the body bytes of the first message.
        grant: sends credits to Mongrel2 (``encode_control(..., {"credits": n})``).
        """
        self._buffer = bytearray(initial)
        self._grant = grant
        self._arrived = Event()
        self._consumed = 0  # read since the last grant
        self._error: str | None = None
        self.received = len(initial)
        self.done = False
        self._send_credits(WINDOW)

    # ------------------------------------------------------------------ receiving side

    def feed(self, offset: int, data: bytes, done: bool) -> None:
        """Append one ``UploadChunk``; a gap or overlap breaks the stream."""
        if self._error is not None or self.done:
            return
        if offset != self.received:
            self.abort(f"upload stream piece at offset {offset}, expected {self.received}")
            return
        self._buffer += data
        self.received += len(data)
        self.done = done
        self._arrived.set()

    def abort(self, reason: str = "client disconnected") -> None:
        """No more body will come: pending and later reads raise ``ClientDisconnected``."""
        if self._error is None and not self.done:
            self._error = reason
        self._arrived.set()

    # ------------------------------------------------------------------ reading side

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left for ``-1``/None); ``b""`` at the end."""
        if size is None or size < 0:
            while self._wait():
                pass
            return self._take(len(self._buffer))
        if size == 0:
            return b""
        while not self._buffer and self._wait():
            pass
        return self._take(min(size, len(self._buffer)))

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line (up to ``size`` bytes)."""
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self._buffer.find(b"\n")
            if end != -1 and (limit is None or end < limit):
                return self._take(end + 1)
            if limit is not None and len(self._buffer) >= limit:
                return self._take(limit)
            if not self._wait():
                return self._take(len(self._buffer))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read the remaining lines."""
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        """Nothing to release (the dispatcher ends the stream)."""

    # ------------------------------------------------------------------ internals

    def _wait(self) -> bool:
        """Wait for more body; False once it is complete. Raises if it never will be."""
        if self.done:
            return False
        if self._error is not None:
            raise ClientDisconnected(self._error)
        self._arrived.clear()
        self._arrived.wait()
        if self._error is not None and not self.done:
            raise ClientDisconnected(self._error)
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._consumed += size
        if self._consumed >= WINDOW // 2 and not self.done:
            self._send_credits(self._consumed)
            self._consumed = 0
        return data

    def _send_credits(self, credits: int) -> None:
        if self._error is None and credits > 0:
            self._grant(credits)


Key = tuple[int, int]  # (channel index, connection id)


class UploadStreams:
    """The streamed bodies still arriving, by connection (the dispatcher's bookkeeping)."""

    def __init__(self) -> None:
        self._bodies: dict[Key, StreamingInput] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def open(self, key: Key, initial: bytes, grant: Callable[[int], None]) -> StreamingInput:
        """Start the body of a new ``StreamedRequest`` (replacing a stale one)."""
        stale = self._bodies.pop(key, None)
        if stale is not None:
            stale.abort("a new request replaced this upload stream")
        body = self._bodies[key] = StreamingInput(initial, grant)
        return body

    def feed(self, key: Key, offset: int, data: bytes, done: bool) -> bool:
        """Pass one ``UploadChunk`` on; return False when no body of that connection is open."""
        body = self._bodies.get(key)
        if body is None:
            return False
        body.feed(offset, data, done)
        if body.done:
            del self._bodies[key]
        return True

    def abort(self, key: Key, reason: str = "client disconnected") -> None:
        """The client left: a reader of its body gets ``ClientDisconnected``."""
        body = self._bodies.pop(key, None)
        if body is not None:
            body.abort(reason)

    def end(self, key: Key, body: StreamingInput) -> None:
        """The request of ``body`` ended: forget it, grant nothing more."""
        body.abort("the request ended")
        if self._bodies.get(key) is body:
            del self._bodies[key]

    def abort_all(self) -> None:
        """Worker exit."""
        for body in self._bodies.values():
            body.abort("the worker is stopping")
        self._bodies.clear()
