"""Numbers about processes: psutil (CPU %, RSS, open fds) plus each worker's counters file.

Workers publish ``{"pid", "served", "in_flight", "started_at", "errors", "rejected",
"timed_out"}`` as JSON at the path
the supervisor gives them in ``M2BRIDGE_STATS_FILE``. A missing, unreadable or stale file (its
``pid`` is another process's) is ignored.
"""

from __future__ import annotations

import json
import os
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


class Sampler:
    """psutil samples per pid; keeps one psutil.Process each so CPU % covers the last interval."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pid: int) -> dict[str, Any]:
        """``{"cpu": percent, "rss": bytes, "fds": count}``; None values for a vanished pid."""
        try:
            proc = self._procs.get(pid) or self._track(pid)
            with proc.oneshot():
                return {
                    "cpu": round(proc.cpu_percent(None), 1),
                    "rss": proc.memory_info().rss,
                    "fds": proc.num_fds(),
                }
        except (psutil.Error, OSError):
            self._procs.pop(pid, None)
            return {"cpu": None, "rss": None, "fds": None}

    def _track(self, pid: int) -> psutil.Process:
        proc = psutil.Process(pid)
        self._procs[pid] = proc
        proc.cpu_percent(None)
        return proc

    def forget_except(self, pids: set[int]) -> None:
        """Drop samplers of processes that are gone."""
        for pid in set(self._procs) - pids:
            del self._procs[pid]


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
