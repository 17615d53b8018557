"""An optional statsd push of the stack's numbers (``[metrics] statsd = "HOST:PORT"``).

Every ``statsd_interval`` seconds the supervisor's loop runs the ``stats`` command (the same
data as ``/metrics``) and sends, over UDP without ever blocking, per watcher: the requests,
5xx, 503 and 504 since the previous push (the first push: since the start) as counters
(``|c``), and in flight, processes, CPU % and RSS as gauges (``|g``); per Mongrel2 its open
connections. Names are
``PREFIX.WATCHER.NAME``. A send that fails is logged once and dropped (statsd is lossy).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("m2bridge.supervisor")

#: ``totals`` key -> the counter's name.
COUNTERS = {"served": "requests", "errors": "5xx", "rejected": "503", "timed_out": "504"}
#: Largest datagram sent: lines are packed into datagrams of at most this size.
MAX_DATAGRAM = 1400


class StatsdPusher:
    """Pushes to ``address`` (HOST:PORT) every ``interval`` seconds when ``tick`` is called."""

    def __init__(self, address: str, prefix: str = "m2bridge", interval: float = 10.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.prefix = prefix
        self.interval = interval
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._next = 0.0
        self._last: dict[tuple[str, str], int] = {}
        self._failing = False

    def tick(self, now: float, stats: Callable[[], dict[str, Any]]) -> None:
        """Push if due (``stats`` gives the ``stats`` command's data); never raises."""
        if now < self._next:
            return
        self._next = now + self.interval
        try:
            lines = list(self.lines(stats()))
        except Exception:  # a bug here must not take the supervisor down
            log.exception("statsd: cannot collect")
            return
        for datagram in pack(lines):
            self._send(datagram)

    def lines(self, data: dict[str, Any]) -> Iterator[str]:
        """The statsd lines of one push; counters are the rise since the previous push."""
        for watcher in data["watchers"]:
            name = f"{self.prefix}.{_clean(watcher['name'])}"
            processes = watcher["processes"]
            yield f"{name}.processes:{len(processes)}|g"
            yield f"{name}.cpu:{sum(p['cpu'] or 0 for p in processes):g}|g"
            yield f"{name}.rss:{sum(p['rss'] or 0 for p in processes)}|g"
            totals = watcher.get("totals")
            if totals is None:
                continue
            yield f"{name}.in_flight:{totals['in_flight']}|g"
            for key, counter in COUNTERS.items():
                before = self._last.get((watcher["name"], key), 0)
                self._last[watcher["name"], key] = totals[key]
                yield f"{name}.{counter}:{max(0, totals[key] - before)}|c"
        for probe in data.get("mongrel2", []):
            if probe.get("connections") is not None:
                name = f"{self.prefix}.{_clean(probe['watcher'])}"
                yield f"{name}.connections:{probe['connections']}|g"

    def _send(self, datagram: bytes) -> None:
        try:
            self.sock.sendto(datagram, self.address)
        except OSError as exc:
            if not self._failing:
                log.warning("statsd: cannot send to %s:%d: %s", *self.address, exc)
            self._failing = True
            return
        self._failing = False

    def close(self) -> None:
        self.sock.close()


def pack(lines: list[str]) -> Iterator[bytes]:
    """``lines`` joined by newlines into datagrams of at most ``MAX_DATAGRAM`` bytes."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode()
        if batch and size + len(data) + 1 > MAX_DATAGRAM:
            yield b"\n".join(batch)
            batch, size = [], 0
        batch.append(data)
        size += len(data) + 1
    if batch:
        yield b"\n".join(batch)


def _clean(name: str) -> str:
    """A watcher name as one statsd path segment."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
