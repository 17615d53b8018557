"""The issues' targets, checked against one run's records (all ratios paired, same run).

Issue 15 (the fast path) sets the hello targets against uWSGI keep-alive, the canned-handler
ceiling and gunicorn-gevent, and the worker's callgrind instructions per request; the targets of
issue 6 (the first benchmark) that issue 15 does not restate stay. Some ratios are reported
without a bound (granian, uWSGI with ``Connection: close``). A target whose stacks or cycle are
missing from the run is reported as not measured; when the named concurrency is absent
(``--quick``) the nearest one that ran is used and the detail says so.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .cycles import STARVED_FRACTION, Record, median, paired_ratio, served_in_cell

IO_WAIT_S = 0.010
WORKER_RSS_LIMIT_MB = 40.0
SUPERVISOR_IDLE_CPU_PCT = 2.0
#: issue 15's bounds on the worker's instructions per hello request, by in-flight bound: one
#: request per wake-up (in flight 1), and requests waiting queued (stated at ~10 per wake-up)
WORKER_INSTRUCTIONS = {1: 120_000.0, 32: 60_000.0}


@dataclass(frozen=True)
class Outcome:
    """One target: the measured value, the bound, and whether it was met (None: not measured)."""

    name: str
    value: float | None
    op: str
    bound: float
    ok: bool | None
    detail: str = ""
    issue: int = 15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Figure:
    """A ratio reported without a bound (None: not measured)."""

    name: str
    value: float | None
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


def _paired(
    records: Sequence[Record], app: str, concurrency: int, stack: str, base: str, key: str
) -> tuple[str, float | None, str]:
    """Name, paired ratio and detail of ``stack`` / ``base`` (nearest concurrency that ran)."""
    c = _nearest(records, app, concurrency)
    what = "p99 latency" if key == "p99" else "req/s"
    name = f"{app} c={concurrency}: {stack} / {base} {what}"
    value = None if c is None else paired_ratio(records, app, stack, base, c, key)
    notes = [] if c in (None, concurrency) else [f"measured at c={c}"]
    if c is not None and value is not None:
        notes += starved(records, app, (stack, base), c)
    return name, value, "; ".join(notes)


def starved(records: Sequence[Record], app: str, stacks: Sequence[str], c: int) -> list[str]:
    """A note for each of ``stacks`` that answered fewer than a quarter of the ``c`` connections
    at once (``cycles.served_connections``): its req/s and latencies are those of fewer clients
    than the cycle's, the others waited unanswered."""
    notes = []
    for stack in stacks:
        served = served_in_cell(records, app, stack, c)
        if served is not None and served < STARVED_FRACTION * c:
            notes.append(f"{stack} answered ~{served:.0f} of {c} connections at once")
    return notes


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
    issue: int = 15

    def evaluate(self, records: Sequence[Record]) -> Outcome:
        name, value, detail = _paired(
            records, self.app, self.concurrency, self.stack, self.base, self.key
        )
        ok = _check(value, self.op, self.bound)
        return Outcome(name, value, self.op, self.bound, ok, detail, self.issue)


@dataclass(frozen=True)
class ReportedRatio:
    """A paired ratio the report shows without a bound."""

    app: str
    concurrency: int
    stack: str
    base: str
    key: str = "rps"

    def evaluate(self, records: Sequence[Record]) -> Figure:
        name, value, detail = _paired(
            records, self.app, self.concurrency, self.stack, self.base, self.key
        )
        return Figure(name, value, detail)


#: issue 15, hello at 50 connections: m2-zmq against uWSGI keep-alive, the canned ceiling and
#: gunicorn-gevent ("p99 no worse than uWSGI's": the keep-alive uWSGI, the one it is measured by).
FAST_PATH_TARGETS = (
    RatioTarget("hello", 50, "m2-zmq", "uwsgi-keepalive", ">=", 1.0),
    RatioTarget("hello", 50, "m2-zmq", "m2-canned", ">=", 0.75),
    RatioTarget("hello", 50, "m2-zmq", "uwsgi-keepalive", "<=", 1.0, key="p99"),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-gevent", ">=", 2.0),
)
#: issue 6's hello targets that issue 15 does not restate (its m2-zmq / uwsgi ratios, against
#: uWSGI with ``Connection: close``, are in REPORTED now).
HELLO_TARGETS_6 = (
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-sync", ">=", 3.0, issue=6),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-gevent", "<=", 1.0, key="p99", issue=6),
    RatioTarget("hello", 50, "m2-zmq", "gunicorn-sync", "<=", 1.0, key="p99", issue=6),
)
IO_TARGET_6 = RatioTarget("io", 200, "m2-zmq", "gunicorn-gevent", ">=", 1.2, issue=6)
FD_TARGETS_6 = (
    RatioTarget("hello", 50, "fd", "gunicorn-gevent", ">=", 1.0, issue=6),
    RatioTarget("io", 200, "fd", "gunicorn-gevent", ">=", 1.0, issue=6),
)
#: reported without a bound: granian (issue 15 asks for the ratio), and uWSGI with
#: ``Connection: close`` (issue 6's reference, kept for comparison with older results).
REPORTED = (
    ReportedRatio("hello", 50, "m2-zmq", "granian"),
    ReportedRatio("hello", 50, "m2-zmq", "granian", key="p99"),
    ReportedRatio("hello", 50, "m2-zmq", "uwsgi"),
    ReportedRatio("hello", 50, "m2-zmq", "uwsgi", key="p99"),
)


def instruction_targets(instructions: Record | None) -> list[Outcome]:
    """The worker's callgrind instructions per hello request against issue 15's bounds
    (``instructions`` is the run's ``worker_instructions`` block; None: not measured)."""
    measured = (instructions or {}).get("per_request", {})
    out = []
    for inflight, bound in WORKER_INSTRUCTIONS.items():
        raw = measured.get(str(inflight))
        value = None if raw is None else float(raw)
        name = f"hello: m2-zmq worker instructions per request, in flight {inflight}"
        wait = "a wait per request" if inflight == 1 else "requests wait queued"
        detail = f"callgrind; {wait}"
        out.append(Outcome(name, value, "<=", bound, _check(value, "<=", bound), detail))
    return out


def littles_law(records: Sequence[Record], stack: str = "m2-zmq", wanted: int = 200) -> Outcome:
    """io throughput as a fraction of concurrency / 10 ms (the most any server can do)."""
    c = _nearest(records, "io", wanted)
    name = f"io c={wanted}: {stack} req/s / Little's-law limit"
    if c is None:
        return Outcome(name, None, ">=", 0.5, None, issue=6)
    rps = [float(r["rps"]) for r in records if _is(r, "io", stack, c)]
    limit = c / IO_WAIT_S
    mid = median(rps)
    value = None if mid is None else mid / limit
    detail = f"limit {limit:.0f} req/s" + ("" if c == wanted else f", measured at c={c}")
    return Outcome(name, value, ">=", 0.5, _check(value, ">=", 0.5), detail, issue=6)


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
    """Worker RSS after the hello run, and the supervisor's CPU while idle (issue 6)."""
    out = []
    for stack in ("m2-zmq", "fd"):
        rss = idle_value(idle, "hello", stack, "worker", "rss_mb")
        name = f"hello: {stack} worker RSS after the run (MB)"
        limit = WORKER_RSS_LIMIT_MB
        out.append(Outcome(name, rss, "<=", limit, _check(rss, "<=", limit), issue=6))
    cpu = idle_value(idle, "hello", "m2-zmq", "supervisor", "cpu_pct")
    detail = "" if cpu is not None else "no supervisor process in this run"
    name = "m2-zmq supervisor CPU while idle (%)"
    limit = SUPERVISOR_IDLE_CPU_PCT
    out.append(Outcome(name, cpu, "<=", limit, _check(cpu, "<=", limit), detail, issue=6))
    return out


def evaluate(
    records: Sequence[Record], idle: Sequence[Record], instructions: Record | None = None
) -> list[Outcome]:
    """Every target: issue 15's first, then issue 6's, each in its issue's order."""
    outcomes = instruction_targets(instructions)
    outcomes += [t.evaluate(records) for t in FAST_PATH_TARGETS + HELLO_TARGETS_6]
    outcomes.append(IO_TARGET_6.evaluate(records))
    outcomes.append(littles_law(records))
    outcomes.extend(t.evaluate(records) for t in FD_TARGETS_6)
    outcomes.extend(resource_targets(idle))
    return outcomes


def reported(records: Sequence[Record]) -> list[Figure]:
    """The ratios reported without a bound, in ``REPORTED`` order."""
    return [r.evaluate(records) for r in REPORTED]
