"""The console's figures: one point per interval from two consecutive supervisor snapshots, and
a bounded history of those points.

Per watcher a point holds requests/s, 5xx/s, 503/s and 504/s (counter deltas over the
interval; a counter that went down was reset and counts as 0), requests in flight, CPU % (the
sum, and per process keyed by slot ``wid`` so a replaced process continues its line), RSS per
process, and the p50/p90/p99 of app time and queue time over the interval (from the latency
histogram's bucket deltas, interpolated inside a bucket as Prometheus' histogram_quantile
does). Per Mongrel2 server it holds open connections and tasks. Fields the supervisor does not
send (``totals``, ``latency``, ``mongrel2``) give None, never an error.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from m2bridge.supervisor.commands.status import not_as_asked

#: 10 minutes at one point a second.
DEFAULT_POINTS = 600
#: point key -> the counter whose increase per second it is.
RATES = {"rps": "served", "errors": "errors", "rejected": "rejected", "timed_out": "timed_out"}
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
LATENCIES = ("app_time", "queue_time")

Point = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """What the supervisor said at one poll.

    Attributes:
        wall: ``time.time()`` of the poll (the point's x, in seconds).
        clock: ``time.monotonic()`` of the poll (the interval's length).
        stats: the ``stats`` command's data.
        status: the ``status`` command's data.
    """

    wall: float
    clock: float
    stats: Mapping[str, Any]
    status: Mapping[str, Any] = field(default_factory=dict)


class History:
    """The last ``size`` points, each derived from a snapshot and the one before it."""

    def __init__(self, size: int = DEFAULT_POINTS) -> None:
        self._points: deque[Point] = deque(maxlen=size)
        self.latest: Snapshot | None = None

    def add(self, snapshot: Snapshot) -> Point:
        """Derive the point of ``snapshot`` (against the previous one), keep and return it."""
        point = derive(self.latest, snapshot)
        self._points.append(point)
        self.latest = snapshot
        return point

    def points(self) -> list[Point]:
        """The kept points, oldest first."""
        return list(self._points)

    def last(self) -> Point | None:
        return self._points[-1] if self._points else None


def derive(before: Snapshot | None, now: Snapshot) -> Point:
    """The figures of the interval that ends at ``now``.

    Rates and percentiles are None for the first snapshot (``before`` None), for a watcher
    that was not there before, and when the clock did not advance.

    Returns:
        ``{"t", "dt", "watchers": {name: figures}, "mongrel2": {watcher: figures}}``.
    """
    dt = now.clock - before.clock if before is not None else 0.0
    earlier = _watchers_by_name(before.stats) if before is not None else {}
    watchers = {
        name: watcher_point(earlier.get(name), watcher, dt)
        for name, watcher in _watchers_by_name(now.stats).items()
    }
    return {
        "t": round(now.wall, 3),
        "dt": round(dt, 3) if dt > 0 else None,
        "watchers": watchers,
        "mongrel2": mongrel2_point(now.stats),
    }


def watcher_point(before: Mapping[str, Any] | None, now: Mapping[str, Any], dt: float) -> Point:
    """One watcher's figures over ``dt`` seconds (``before``: its previous stats, or None)."""
    processes = _processes(now)
    point: Point = {
        "in_flight": _total(p.get("in_flight") for p in processes),
        "cpu": _total(p.get("cpu") for p in processes),
        "cpu_by_wid": {str(p.get("wid")): _number(p.get("cpu")) for p in processes},
        "rss_by_wid": {str(p.get("wid")): _number(p.get("rss")) for p in processes},
    }
    for key, counter in RATES.items():
        point[key] = _rate(before, now, counter, dt)
    for kind in LATENCIES:
        delta = _histogram_delta(before, now, kind) if dt > 0 else None
        point[kind] = {
            name: None if delta is None else round(quantile(q, *delta), 6)
            for name, q in QUANTILES.items()
        }
    return point


def mongrel2_point(stats: Mapping[str, Any]) -> Point:
    """Per Mongrel2 server (keyed by its watcher): open connections, tasks, whether it answers."""
    servers = stats.get("mongrel2") or []
    return {
        str(m["watcher"]): {
            "connections": _number(m.get("connections")),
            "tasks": _number(m.get("tasks")),
            "answering": m.get("answering") is True,
        }
        for m in servers
        if isinstance(m, Mapping) and "watcher" in m
    }


def quantile(q: float, bounds: list[float], counts: list[int]) -> float:
    """The ``q`` quantile of a histogram, as Prometheus' histogram_quantile computes it.

    Args:
        q: from 0 to 1.
        bounds: the buckets' upper bounds, ascending (at least one).
        counts: per bucket (not cumulative), ``len(bounds) + 1`` of them, the last for +Inf;
            their sum must be positive.

    Returns:
        A linear interpolation inside the bucket the rank falls in (whose lower bound is the
        previous bucket's upper bound, 0 for the first); the highest finite bound when it
        falls in the +Inf bucket.
    """
    rank = q * sum(counts)
    below = 0
    for i, bound in enumerate(bounds):
        count = counts[i]
        if count and below + count >= rank:
            lower = bounds[i - 1] if i else 0.0
            return lower + (bound - lower) * (rank - below) / count
        below += count
    return bounds[-1]


def health(status: Mapping[str, Any]) -> dict[str, Any]:
    """``{"healthy": bool, "problems": [str]}``: as the supervisor reports it, or (from an
    older supervisor) derived from the watchers not running as asked."""
    healthy = status.get("healthy")
    if isinstance(healthy, bool):
        return {"healthy": healthy, "problems": [str(p) for p in status.get("problems") or []]}
    down = not_as_asked(status.get("watchers") or [])
    problems = [_problem(w) for w in down]
    return {"healthy": not down, "problems": problems}


def _problem(watcher: Mapping[str, Any]) -> str:
    reason = watcher.get("reason")
    return f"{watcher['name']} is {watcher['state']}" + (f": {reason}" if reason else "")


def _watchers_by_name(stats: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(w["name"]): w for w in stats.get("watchers") or []}


def _processes(watcher: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(watcher.get("processes") or [])


def _rate(
    before: Mapping[str, Any] | None, now: Mapping[str, Any], counter: str, dt: float
) -> float | None:
    """Increase of ``counter`` per second, or None when unknown."""
    if before is None or dt <= 0:
        return None
    increase = _increase(before, now, counter)
    return None if increase is None else _rounded(increase / dt, 3)


def _increase(before: Mapping[str, Any], now: Mapping[str, Any], counter: str) -> float | None:
    """By the watcher's lifetime ``totals`` when both snapshots have them, else summed over
    its processes (by pid: a process that ended takes its count away, it does not reset)."""
    totals, earlier = now.get("totals"), before.get("totals")
    if isinstance(totals, Mapping) and isinstance(earlier, Mapping):
        new, old = _number(totals.get(counter)), _number(earlier.get(counter))
        if new is None or old is None:
            return None
        return max(0.0, new - old)
    previous = {p.get("pid"): _number(p.get(counter)) for p in _processes(before)}
    increase: float | None = None
    for process in _processes(now):
        new = _number(process.get(counter))
        if new is None:
            continue
        old = previous.get(process.get("pid"))
        increase = (increase or 0.0) + (new if old is None else max(0.0, new - old))
    return increase


def _histogram_delta(
    before: Mapping[str, Any] | None, now: Mapping[str, Any], kind: str
) -> tuple[list[float], list[int]] | None:
    """The ``kind`` histogram's bounds and per-bucket increase over the interval; None when
    there is no histogram (in either snapshot), its buckets changed, it was reset or nothing
    was counted."""
    latency = now.get("latency")
    earlier = before.get("latency") if before is not None else None
    if not isinstance(latency, Mapping) or not isinstance(earlier, Mapping):
        return None
    bounds = latency.get("buckets")
    if not isinstance(bounds, list) or not bounds or bounds != earlier.get("buckets"):
        return None
    new, old = _counts(latency, kind), _counts(earlier, kind)
    if new is None or old is None or not len(new) == len(old) == len(bounds) + 1:
        return None
    deltas = [b - a for a, b in zip(old, new, strict=True)]
    if min(deltas) < 0 or sum(deltas) == 0:
        return None
    return bounds, deltas


def _counts(latency: Mapping[str, Any], kind: str) -> list[int] | None:
    histogram = latency.get(kind)
    counts = histogram.get("counts") if isinstance(histogram, Mapping) else None
    if not isinstance(counts, list) or not all(_number(c) is not None for c in counts):
        return None
    return counts


def _total(values: Iterable[object]) -> float | None:
    """The sum of the numbers among ``values``; None when there is none."""
    numbers = [n for n in map(_number, values) if n is not None]
    return _rounded(sum(numbers), 3) if numbers else None


def _number(value: object) -> float | None:
    """``value`` if it is an int or a float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
