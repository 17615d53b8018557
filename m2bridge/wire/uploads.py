"""Bookkeeping of Mongrel2's async uploads: which connection announced which temp file.

For a body larger than ``limits.content_length`` (or any chunked body) Mongrel2 sends the
request twice: ``x-mongrel2-upload-start: PATH`` before it reads the body and
``x-mongrel2-upload-done: PATH`` once PATH (inside its chroot) holds it. A client can send those
headers itself, so a ``done`` is honoured only when the same connection announced the same path
with a ``start`` first, and a ``start`` only when it looks like one Mongrel2 made: no inline
body, and a body that is chunked or has a positive Content-Length.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from m2bridge.wire.protocol import UploadDone, UploadStarted

Key = tuple[int, int]  # (channel index, connection id)


def is_plausible_start(event: UploadStarted) -> bool:
    """Tell whether ``event`` can be Mongrel2's own upload-start message (not a forgery).

    Mongrel2 sends ``start`` before reading the body, so its message has an empty body, and it
    takes the upload path only for a chunked body or a Content-Length above its limit.
    """
    if event.body:
        return False
    if (event.header("transfer-encoding") or "").lower() == "chunked":
        return True
    length = event.header("content-length") or ""
    return length.isdigit() and int(length) > 0


class UploadTracker:
    """The temp file each connection announced with ``upload-start`` and has not finished."""

    def __init__(self) -> None:
        self._started: dict[Key, str] = {}

    def __len__(self) -> int:
        return len(self._started)

    def start(self, key: Key, event: UploadStarted) -> bool:
        """Remember the announced path.

        Returns:
            False when the message cannot be Mongrel2's (see ``is_plausible_start``).
        """
        if not is_plausible_start(event):
            return False
        self._started[key] = event.upload_path
        return True

    def claim(self, key: Key, event: UploadDone) -> bool:
        """Tell whether ``event`` completes the upload this connection started, forgetting it.

        A mismatch (no start, or another path) is a forgery; the announced upload, if any, stays
        pending until its real ``done`` or the client's disconnect.
        """
        if self._started.get(key) != event.upload_path:
            return False
        del self._started[key]
        return True

    def forget(self, key: Key) -> str | None:
        """The connection went away: return the path of its unfinished upload, if any."""
        return self._started.pop(key, None)

    def forget_all(self) -> list[str]:
        """Worker exit: return and forget every unfinished upload's path."""
        paths = list(self._started.values())
        self._started.clear()
        return paths
