"""Relay a child's output pipe to the supervisor's log stream, each line prefixed ``name.wid | ``.

The arbiter polls the pipe's fd with everything else and calls ``read`` when it is readable.
The last lines of each label (``name.wid``) are kept, so that an exit can be explained in the
process's own words (``recent_lines``: Mongrel2 prints its start-up errors, such as a port
clash, before it opens its error log).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import BinaryIO

CHUNK = 65536
MAX_LINE = 16384
#: Lines kept per label for ``recent_lines``.
RECENT_LINES = 50
#: What separates the label from the line in a prefix (``hello.1 | ``).
SEPARATOR = " | "

_recent: dict[str, deque[str]] = {}


def recent_lines(label: str) -> list[str]:
    """The last lines (at most ``RECENT_LINES``) that the newest process relayed under
    ``label`` printed, oldest first; [] when there is none."""
    return list(_recent.get(label, ()))


class LineRelay:
    """Non-blocking reader of one pipe; writes complete lines (and over-long fragments)."""

    def __init__(self, fd: int, prefix: str, sink: BinaryIO) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.prefix = prefix.encode()
        self.sink = sink
        self._partial = b""
        self.closed = False
        self.recent: deque[str] = deque(maxlen=RECENT_LINES)
        _recent[prefix.removesuffix(SEPARATOR)] = self.recent  # the newest process wins

    def read(self) -> bool:
        """Relay what the pipe holds now; False (and the fd closed) at end of file."""
        while not self.closed:
            try:
                chunk = os.read(self.fd, CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                self.close()
                return False
            self._emit(chunk)
        return False

    def _emit(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        self.recent.extend(line.decode("utf-8", "replace") for line in lines[-RECENT_LINES:])
        if lines:
            # A closed or broken log stream must not take the supervisor down: drop the output.
            with contextlib.suppress(OSError, ValueError):
                self.sink.write(b"".join(self.prefix + line + b"\n" for line in lines))
                self.sink.flush()

    def close(self) -> None:
        """Flush a last unterminated line and close the fd (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._partial:
            self._emit(b"\n")
        with contextlib.suppress(OSError):
            os.close(self.fd)
