"""Numbers about processes: psutil (CPU %, RSS, open fds) plus each worker's counters file.

CPU % is over a recent interval, never "since the previous ``stats`` call": the supervisor's
loop gives ``Sampler.tick`` every pid each turn, and it samples CPU times once per
``CPU_INTERVAL`` (and each new process at once).

Workers publish ``{"pid", "served", "in_flight", "started_at", "errors", "rejected",
"timed_out"}`` as JSON at the path
the supervisor gives them in ``M2BRIDGE_STATS_FILE``. A missing, unreadable or stale file (its
``pid`` is another process's) is ignored.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

COUNTERS = ("served", "in_flight", "errors", "rejected", "timed_out")


def read_counters(path: Path | None, pid: int) -> dict[str, Any] | None:
    """The counters ``pid`` last published at ``path``, or None."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pid") != pid:
        return None
    return data


#: Seconds between the CPU-time samples the supervisor's loop takes of every process.
CPU_INTERVAL = 1.0
#: A span shorter than this gives no CPU % worth showing; CPU since the start is shown then.
MIN_SPAN = 0.1


@dataclass
class _Track:
    """One process: its psutil handle and its last two (monotonic time, CPU seconds) samples."""

    proc: psutil.Process
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=2))


class Sampler:
    """psutil samples per pid. ``tick`` (every loop turn) records CPU times once per
    ``interval``, so ``sample`` reports CPU % over the last one or two intervals, from the
    first call on; a process younger than that reports its CPU % since it started."""

    def __init__(
        self, interval: float = CPU_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._tracks: dict[int, _Track] = {}
        self._sampled_at = -math.inf

    def tick(self, pids: set[int]) -> None:
        """Record the CPU times of ``pids``: new ones now, all once per interval; forget the
        others. Cheap (one /proc read per process), so the loop calls it every turn."""
        now = self._clock()
        due = now - self._sampled_at >= self.interval
        if due:
            self._sampled_at = now
            self.forget_except(pids)
        for pid in pids:
            if due or pid not in self._tracks:
                self._record(pid, now)

    def _record(self, pid: int, now: float) -> None:
        try:
            track = self._tracks.get(pid) or self._track(pid)
            track.samples.append((now, cpu_seconds(track.proc)))
        except (psutil.Error, OSError):
            self._tracks.pop(pid, None)

    def sample(self, pid: int) -> dict[str, Any]:
        """``{"cpu": percent, "cpu_seconds": total, "rss": bytes, "fds": count}``; None values
        for a vanished pid."""
        try:
            track = self._tracks.get(pid) or self._track(pid)
            with track.proc.oneshot():
                used = cpu_seconds(track.proc)
                return {
                    "cpu": round(self._cpu_percent(track, used), 1),
                    "cpu_seconds": round(used, 3),
                    "rss": track.proc.memory_info().rss,
                    "fds": track.proc.num_fds(),
                }
        except (psutil.Error, OSError):
            self._tracks.pop(pid, None)
            return {"cpu": None, "cpu_seconds": None, "rss": None, "fds": None}

    def _cpu_percent(self, track: _Track, used: float) -> float:
        """CPU % since the oldest sample kept, or since the process started."""
        now = self._clock()
        if track.samples:
            at, before = track.samples[0]
            if now - at >= MIN_SPAN:
                return 100 * max(0.0, used - before) / (now - at)
        age = time.time() - track.proc.create_time()
        return 100 * used / max(age, MIN_SPAN)

    def _track(self, pid: int) -> _Track:
        track = _Track(psutil.Process(pid))
        self._tracks[pid] = track
        return track

    def tracked(self) -> set[int]:
        """The pids with samples."""
        return set(self._tracks)

    def forget_except(self, pids: set[int]) -> None:
        """Drop samplers of processes that are gone."""
        for pid in set(self._tracks) - pids:
            del self._tracks[pid]


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds ``proc`` has used (its children not included)."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def rss_of(pid: int) -> int | None:
    """The resident set size of ``pid`` in bytes, or None when it is gone."""
    try:
        rss: int = psutil.Process(pid).memory_info().rss
    except (psutil.Error, OSError):
        return None
    return rss


def self_sample(sampler: Sampler) -> dict[str, Any]:
    """The supervisor's own sample."""
    return {"pid": os.getpid(), **sampler.sample(os.getpid())}
