"""A chat room: ``GET`` serves a tiny HTML page; every WebSocket message goes to everyone.

Text and binary messages are broadcast as they are (the sender gets its own copy back, so a
single client sees an echo); joins and departures are announced as ``* <id> joined`` /
``* <id> left`` text messages. The room lives in one worker process: run it with one worker
(greenlets give the concurrency), as Mongrel2 deals frames to workers round-robin.
"""

from __future__ import annotations

from collections.abc import Iterable

from m2bridge._types import Environ, StartResponse
from m2bridge.websockets import WebSocket, WebSocketHandler, broadcast, with_websocket

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>m2bridge chat</title></head>
<body>
<pre id="log"></pre>
<form id="f"><input id="m" autocomplete="off" autofocus><button>Send</button></form>
<script>
const log = document.getElementById("log");
const ws = new WebSocket(location.href.replace(/^http/, "ws"));
ws.onmessage = (e) => { log.textContent += e.data + "\\n"; };
ws.onclose = (e) => { log.textContent += "* closed (" + e.code + ")\\n"; };
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById("m");
  ws.send(m.value);
  m.value = "";
};
</script>
</body></html>
"""


class ChatRoom(WebSocketHandler):
    """Every open socket of the room; each message is broadcast to all of them."""

    def __init__(self) -> None:
        self.members: set[WebSocket] = set()

    def on_connect(self, ws: WebSocket) -> None:
        self.members.add(ws)
        broadcast(self.members, f"* {ws.conn_id} joined ({len(self.members)} here)")

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        broadcast(self.members, message)

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        if ws in self.members:
            self.members.discard(ws)
            broadcast(self.members, f"* {ws.conn_id} left ({code})")


def page(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The chat page for any plain HTTP request."""
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))]
    )
    return [PAGE]


app = with_websocket(page, ChatRoom())
