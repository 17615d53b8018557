"""Hub: fans the collector's updates out to every open event stream of the console.

Each subscriber has a bounded queue; a subscriber too slow to keep up (its queue full) is
dropped, so one stuck browser never holds memory or the collector: its EventSource reconnects
and starts again from the history. A subscriber is forgotten as soon as its stream is closed
(the client left, or the server stops).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from gevent.queue import Empty, Full, Queue

#: An event of the stream: (name, JSON-able data).
Event = tuple[str, dict[str, Any]]
#: Events a subscriber may have waiting before it is dropped.
QUEUE_SIZE = 64
#: Seconds of silence after which a stream gets a heartbeat (None from the iterator).
HEARTBEAT = 15.0
_CLOSE: Event = ("", {})


@dataclass(eq=False)
class _Subscriber:
    queue: Queue[Event] = field(default_factory=lambda: Queue(QUEUE_SIZE))
    closed: bool = False


class Hub:
    """The set of open event streams, and the one way to send them an event."""

    def __init__(self, heartbeat: float = HEARTBEAT) -> None:
        self.heartbeat = heartbeat
        self._subscribers: set[_Subscriber] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, first: Callable[[], Event]) -> Generator[Event | None, None, None]:
        """A stream: ``first()`` (taken when iteration starts, so no update is missed or
        repeated), then every published event; None after ``heartbeat`` seconds of silence.
        Ends when the hub closes or drops it; closing it unsubscribes."""
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield first()
            while not subscriber.closed:
                try:
                    event = subscriber.queue.get(timeout=self.heartbeat)
                except Empty:
                    yield None
                    continue
                if event is _CLOSE:
                    return
                yield event
        finally:
            self._subscribers.discard(subscriber)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Queue an event for every subscriber; drop those whose queue is full."""
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait((name, data))
            except Full:
                subscriber.closed = True
                self._subscribers.discard(subscriber)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for subscriber in list(self._subscribers):
            subscriber.closed = True
            with contextlib.suppress(Full):
                subscriber.queue.put_nowait(_CLOSE)
            self._subscribers.discard(subscriber)
