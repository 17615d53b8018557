"""A watcher's request counters over its whole life: the processes running now plus every one
that ended, so that the totals only grow (what Prometheus expects of a counter).

Each worker publishes its own counters (``worker/stats.py``); a process that ends takes them
with it, so the watcher adds its last published counters to ``Ended`` when it reaps it. A
worker killed with SIGKILL loses what it served after its last publish (at most
``PUBLISH_INTERVAL``); a graceful stop publishes the final counters first.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from m2bridge.worker.stats import DURATION_BUCKETS

#: The counters that add up across processes (``in_flight`` is a gauge: live processes only).
SUMMED = ("served", "errors", "rejected", "timed_out")
HISTOGRAMS = ("queue_time", "app_time")
#: Why a watcher's processes were replaced: an unexpected exit with status 0 or by a crash
#: (another status, a signal), a back-off or give-up for flapping, ``max_requests``,
#: ``max_rss``, a ``reload``/``restart``, or a missed heartbeat (``hang_timeout``: killed).
RESTART_REASONS = ("exit", "crash", "flapping", "max_requests", "max_rss", "reload", "hung")
_BUCKETS = len(DURATION_BUCKETS) + 1


class Ended:
    """The summed counters of a watcher's processes that have ended."""

    def __init__(self) -> None:
        self.counters = dict.fromkeys(SUMMED, 0)
        self.histograms = {name: _empty() for name in HISTOGRAMS}

    def add(self, counters: Mapping[str, Any]) -> None:
        """Add one ended process's last published counters."""
        _add_into(self.counters, self.histograms, counters)


def totals(
    ended: Ended, live: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(totals, latency)`` of a watcher: ``ended`` plus the counters of its live processes.

    ``totals`` holds ``SUMMED`` and ``in_flight``; ``latency`` holds ``buckets`` (the upper
    bounds) and per histogram ``{"counts": [...], "sum": s}``, counts not cumulative.
    """
    counters = dict(ended.counters)
    histograms = {
        name: {"counts": list(h["counts"]), "sum": h["sum"]} for name, h in ended.histograms.items()
    }
    in_flight = 0
    for published in live:
        _add_into(counters, histograms, published)
        in_flight += _count(published.get("in_flight"))
    return {**counters, "in_flight": in_flight}, {"buckets": list(DURATION_BUCKETS), **histograms}


def _add_into(
    counters: dict[str, int], histograms: dict[str, dict[str, Any]], published: Mapping[str, Any]
) -> None:
    for key in SUMMED:
        counters[key] += _count(published.get(key))
    for name in HISTOGRAMS:
        histogram = published.get(name)
        if not isinstance(histogram, Mapping):
            continue
        counts, total = histogram.get("counts"), histogram.get("sum")
        if not isinstance(counts, list) or len(counts) != _BUCKETS:
            continue  # published by another version of the worker: not comparable
        target = histograms[name]
        target["counts"] = [a + _count(b) for a, b in zip(target["counts"], counts, strict=True)]
        if isinstance(total, int | float) and not isinstance(total, bool):
            target["sum"] += float(total)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _empty() -> dict[str, Any]:
    return {"counts": [0] * _BUCKETS, "sum": 0.0}
