"""A worker's counters, published as a small JSON file the supervisor reads (both worker kinds).

The file holds ``{"pid", "served", "in_flight", "started_at", "errors", "rejected",
"timed_out", "queue_time", "app_time", "heartbeat"}``, the two histograms
(``Histogram.snapshot``) over ``DURATION_BUCKETS``. It is replaced atomically (written to a
temp file in the same directory, then renamed) and rewritten every ``PUBLISH_INTERVAL``
whatever the counters did, so publishing costs nothing per request (two small writes a second).
``publish_forever`` is the loop a worker runs in a greenlet of its own (it passes its ``sleep``);
``stop_publishing`` kills it and writes the final counters.

``heartbeat`` is the Unix time of the write: a greenlet runs only when the gevent hub runs, so
a request holding the CPU (no yield) stops the heartbeat, and the supervisor, which sees the
value stop changing, replaces the worker (``hang_timeout``, docs/reliability.md). The final
write has ``"heartbeat": null``: the worker stopped beating on purpose.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from m2bridge import environment

log = logging.getLogger("m2bridge.worker.stats")

#: Seconds between two writes of the stats file (at most).
PUBLISH_INTERVAL = 0.5
#: Upper bounds (seconds) of the request-duration histograms' buckets; one more counts the
#: rest (Prometheus' ``+Inf``). The supervisor sums the workers' counts bucket by bucket.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Histogram:
    """Counts of durations per bucket of ``DURATION_BUCKETS`` (not cumulative) and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one duration (a bucket holds the values up to and including its bound)."""
        self.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum}


class WorkerStats:
    """Counters of one worker process; plain attributes, updated in place by the worker.

    Attributes:
        pid: the worker's process id.
        started_at: Unix time the worker started.
        served: requests answered (whatever the status).
        in_flight: requests being served now.
        errors: requests answered 5xx or cut off by an application error.
        rejected: requests answered 503 because ``--max-in-flight`` were being served.
        timed_out: requests cancelled by ``--timeout`` (answered 504 when nothing was sent).
        queue_time: seconds from a request's arrival in the worker to its app call.
        app_time: seconds from the app call to the request's end (the whole reply sent).
    """

    __slots__ = (
        "app_time", "errors", "in_flight", "pid", "queue_time", "rejected", "served",
        "started_at", "timed_out",
    )  # fmt: skip

    def __init__(self, pid: int | None = None, started_at: float | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.started_at = time.time() if started_at is None else started_at
        self.served = 0
        self.in_flight = 0
        self.errors = 0
        self.rejected = 0
        self.timed_out = 0
        self.queue_time = Histogram()
        self.app_time = Histogram()

    def snapshot(self, heartbeat: float | None = None) -> dict[str, Any]:
        """The counters as published, with ``heartbeat`` (None: the final write)."""
        return {
            "pid": self.pid,
            "served": self.served,
            "in_flight": self.in_flight,
            "started_at": self.started_at,
            "errors": self.errors,
            "rejected": self.rejected,
            "timed_out": self.timed_out,
            "queue_time": self.queue_time.snapshot(),
            "app_time": self.app_time.snapshot(),
            "heartbeat": heartbeat,
        }


def write_atomically(path: str, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON so that readers never see a partial file.

    Raises:
        OSError: the directory is missing or not writable.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    except OSError:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class StatsFile:
    """Publishes a ``WorkerStats`` to ``path`` when it changed since the last write, or as a
    heartbeat."""

    def __init__(
        self, path: str, stats: WorkerStats, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.stats = stats
        self.clock = clock
        self._last: tuple[int, ...] | None = None
        self._warned = False

    def publish(self, force: bool = False, final: bool = False) -> bool:
        """Write the file if the counters changed (or ``force``); never raises.

        The file's ``heartbeat`` is the clock's time, or None with ``final`` (no more beats).

        Returns:
            Whether the file was written.
        """
        stats = self.stats
        current = (stats.served, stats.in_flight, stats.errors, stats.rejected, stats.timed_out)
        if current == self._last and not force:
            return False
        try:
            write_atomically(self.path, stats.snapshot(None if final else self.clock()))
        except OSError as exc:
            if not self._warned:  # once: a broken path must not flood the log
                log.warning("cannot write stats file %s: %s", self.path, exc)
                self._warned = True
            return False
        self._last = current
        return True


def stats_file_for(
    configured: str | None, stats: WorkerStats, environ: Mapping[str, str] = os.environ
) -> StatsFile | None:
    """Where to publish ``stats``: the configured path, else the supervisor's; None: nowhere."""
    path = configured or environment.stats_file(environ)
    return StatsFile(path, stats) if path else None


def _ready_now() -> None:
    return None


def publish_forever(
    stats_file: StatsFile,
    sleep: Callable[[float], object],
    ready: Callable[[], object] = _ready_now,
) -> None:
    """Publish once ``ready()`` returned (the supervisor takes the first file as the worker's
    readiness), then every ``PUBLISH_INTERVAL``, changed or not: each write is a heartbeat.
    Runs until killed."""
    ready()
    while True:
        stats_file.publish(force=True)
        sleep(PUBLISH_INTERVAL)


class Killable(Protocol):
    """The greenlet running ``publish_forever``."""

    def kill(self) -> object: ...


def stop_publishing(publisher: Killable | None, stats_file: StatsFile | None) -> None:
    """Stop ``publish_forever`` and write the final counters, without a heartbeat (nothing
    without a file)."""
    if publisher is not None:
        publisher.kill()
    if stats_file is not None and publisher is not None:
        stats_file.publish(force=True, final=True)
