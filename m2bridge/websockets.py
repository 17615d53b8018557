"""What a WSGI app imports to serve WebSockets through m2bridge (see docs/websockets.md).

A module's ``app`` gains a ``websocket`` handler with ``with_websocket(app, handler)``; the
handler's hooks get a ``WebSocket`` per connection; ``broadcast`` sends one message to many
sockets in one reply; the ``CLOSE_*`` codes are RFC 6455's. The implementation lives in
``m2bridge.worker.wsapp`` (I/O) and ``m2bridge.wire.websocket`` (frames); this module is the
stable name apps use.
"""

from __future__ import annotations

from m2bridge.wire.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
)
from m2bridge.worker.wsapp import (
    Broadcaster,
    WebSocket,
    WebSocketHandler,
    broadcast,
    with_websocket,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "Broadcaster",
    "WebSocket",
    "WebSocketHandler",
    "broadcast",
    "with_websocket",
]
