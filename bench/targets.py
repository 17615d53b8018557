"""The issue's targets, checked against one run's records (all ratios paired, same run).

A target whose stacks or cycle are missing from the run is reported as not measured; when the
named concurrency is absent (``--quick``) the nearest one that ran is used and the detail says so.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.cycles import Record, median, paired_ratio

IO_WAIT_S = 0.010
WORKER_RSS_LIMIT_MB = 40.0
SUPERVISOR_IDLE_CPU_PCT = 2.0


@dataclass(frozen=True)
class Outcome:
    """One target: the measured value, the bound, and whether it was met (None: not measured)."""

    name: str
    value: float | None
    op: str
    bound: float
    ok: bool | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def _nearest(records: Sequence[Record], app: str, wanted: int) -> int | None:
    levels = sorted({int(r["concurrency"]) for r in records if r["app"] == app})
    if not levels:
        return None
    return min(levels, key=lambda c: (abs(c - wanted), -c))


@dataclass(frozen=True)
class RatioTarget:
    """``stack`` / ``base`` on ``app`` at ``concurrency`` for ``key`` (``rps`` or ``p99``)."""

    app: str
    concurrency: int
    stack: str
    base: str
    op: str
    bound: float
    key: str = "rps"

    def evaluate(self, records: Sequence[Record]) -> Outcome:
        c = _nearest(records, self.app, self.concurrency)
        what = "p99 latency" if self.key == "p99" else "req/s"
        name = f"{self.app} c={self.concurrency}: {self.stack} / {self.base} {what}"
        value = None
        if c is not None:
            value = paired_ratio(records, self.app, self.stack, self.base, c, self.key)
        detail = "" if c in (None, self.concurrency) else f"measured at c={c}"
        return Outcome(name, value, self.op, self.bound, _check(value, self.op, self.bound), detail)


RATIO_TARGETS = (
    RatioTarget("hello", 50, "m2-zmq", "uwsgi", ">=", 1.0),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-gevent", ">=", 1.5),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-sync", ">=", 3.0),
    RatioTarget("hello", 50, "m2-zmq", "uwsgi", "<=", 1.0, key="p99"),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-gevent", "<=", 1.0, key="p99"),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-sync", "<=", 1.0, key="p99"),
    RatioTarget("hello", 50, "m2-zmq", "m2-canned", ">=", 0.5),
    RatioTarget("io", 200, "m2-zmq", "gunicorn-gevent", ">=", 1.2),
    RatioTarget("hello", 50, "fd", "gunicorn-gevent", ">=", 1.0),
    RatioTarget("io", 200, "fd", "gunicorn-gevent", ">=", 1.0),
)


def littles_law(records: Sequence[Record], stack: str = "m2-zmq", wanted: int = 200) -> Outcome:
    """io throughput as a fraction of concurrency / 10 ms (the most any server can do)."""
    c = _nearest(records, "io", wanted)
    name = f"io c={wanted}: {stack} req/s / Little's-law limit"
    if c is None:
        return Outcome(name, None, ">=", 0.5, None)
    rps = [float(r["rps"]) for r in records if _is(r, "io", stack, c)]
    limit = c / IO_WAIT_S
    mid = median(rps)
    value = None if mid is None else mid / limit
    detail = f"limit {limit:.0f} req/s" + ("" if c == wanted else f", measured at c={c}")
    return Outcome(name, value, ">=", 0.5, _check(value, ">=", 0.5), detail)


def _is(record: Record, app: str, stack: str, concurrency: int) -> bool:
    return bool(
        record["app"] == app and record["stack"] == stack and record["concurrency"] == concurrency
    )


def idle_value(idle: Sequence[Record], app: str, stack: str, role: str, field: str) -> float | None:
    """Largest ``field`` (``rss_mb``, ``cpu_pct``) of a ``role`` process in the last idle window."""
    values = [
        float(p[field])
        for sample in idle
        if sample["app"] == app and sample["stack"] == stack and sample["phase"] == "after"
        for p in sample["procs"]
        if p["role"] == role
    ]
    return max(values) if values else None


def resource_targets(idle: Sequence[Record]) -> list[Outcome]:
    """Worker RSS after the hello run, and the supervisor's CPU while idle."""
    out = []
    for stack in ("m2-zmq", "fd"):
        rss = idle_value(idle, "hello", stack, "worker", "rss_mb")
        name = f"hello: {stack} worker RSS after the run (MB)"
        limit = WORKER_RSS_LIMIT_MB
        out.append(Outcome(name, rss, "<=", limit, _check(rss, "<=", limit)))
    cpu = idle_value(idle, "hello", "m2-zmq", "supervisor", "cpu_pct")
    detail = "" if cpu is not None else "no supervisor process in this run"
    name = "m2-zmq supervisor CPU while idle (%)"
    limit = SUPERVISOR_IDLE_CPU_PCT
    out.append(Outcome(name, cpu, "<=", limit, _check(cpu, "<=", limit), detail))
    return out


def evaluate(records: Sequence[Record], idle: Sequence[Record]) -> list[Outcome]:
    """Every target of the issue, in the issue's order."""
    outcomes = [t.evaluate(records) for t in RATIO_TARGETS[:7]]
    outcomes.append(RATIO_TARGETS[7].evaluate(records))
    outcomes.append(littles_law(records))
    outcomes.extend(t.evaluate(records) for t in RATIO_TARGETS[8:])
    outcomes.extend(resource_targets(idle))
    return outcomes
