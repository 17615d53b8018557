"""The benchmark plan and its statistics: which stack runs when, medians and paired ratios.

A run is, for each app, ``rounds`` passes over the concurrency cycles; inside each cycle every
stack runs once, in an order rotated by one each round (A B C, B C A, C A B) so no stack always
follows the same neighbour. Ratios are paired: the ratio of two stacks in the same round and
cycle, then the median over rounds, so slow drift of the machine cancels out.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

APPS = ("hello", "io", "big", "post")
#: ``m2-zmq`` is the m2bridge Mongrel2 topology the targets are about: Mongrel2, ``m2bridge relay``
#: and the workers (the one multi-worker topology, docs/decisions/0001-multi-worker-topology.md;
#: results before it measured workers straight on Mongrel2 as ``m2-zmq``, this as ``m2-relay``).
STACKS = (
    "m2-zmq",
    "fd",
    "gunicorn-sync",
    "gunicorn-gevent",
    "uwsgi",
    "uwsgi-keepalive",
    "granian",
    "m2-static",
    "m2-canned",
)
CONCURRENCIES = (1, 10, 50, 100, 200)
#: requests the worker under callgrind serves in its two runs (the figure is their difference)
CALLGRIND_REQUESTS = (500, 2500)
#: in-flight bounds of the callgrind figure: 1 (a wait per request) and the relay's window, 32
CALLGRIND_INFLIGHT = (1, 32)
BASELINES = ("gunicorn-gevent", "gunicorn-sync")
#: ceilings only make sense for some apps: Mongrel2 serves a file, the canned handler waits on
#: nothing (so it is no ceiling for ``io``), and a directory route takes no upload.
ONLY_FOR_APPS = {"m2-static": ("hello", "big"), "m2-canned": ("hello", "big", "post")}

Record = dict[str, Any]


@dataclass(frozen=True)
class BenchConfig:
    """Everything that shapes a run; written into the result JSON as ``config``."""

    apps: tuple[str, ...] = APPS
    stacks: tuple[str, ...] = STACKS
    concurrencies: tuple[int, ...] = CONCURRENCIES
    duration_s: int = 5
    warmup_s: int = 1
    rounds: int = 3
    workers: int = 2
    idle_s: float = 3.0
    warmup_every_round: bool = True
    direct: bool = False
    quick: bool = False
    #: ``m2-zmq`` runs ``m2bridge relay`` (always now; recorded for ``--diff`` of older results)
    relay: bool = True
    #: measure the worker's instructions per hello request under callgrind after the cycles
    callgrind: bool = True
    callgrind_requests: tuple[int, int] = CALLGRIND_REQUESTS
    callgrind_inflight: tuple[int, ...] = CALLGRIND_INFLIGHT
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "apps": list(self.apps),
            "stacks": list(self.stacks),
            "concurrencies": list(self.concurrencies),
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "rounds": self.rounds,
            "workers": self.workers,
            "idle_s": self.idle_s,
            "warmup_every_round": self.warmup_every_round,
            "direct": self.direct,
            "quick": self.quick,
            "relay": self.relay,
            "callgrind": self.callgrind,
            "callgrind_requests": list(self.callgrind_requests),
            "callgrind_inflight": list(self.callgrind_inflight),
        }


def quick_config(base: BenchConfig | None = None) -> BenchConfig:
    """The development run: two apps, two cycles, 1 s each, two rounds, warm-up in round 0 only,
    no callgrind figure."""
    return replace(
        base or BenchConfig(),
        apps=("hello", "io"),
        concurrencies=(10, 50),
        duration_s=1,
        warmup_s=1,
        rounds=2,
        idle_s=1.0,
        warmup_every_round=False,
        quick=True,
        callgrind=False,
    )


def stacks_for(app: str, stacks: Sequence[str]) -> list[str]:
    """The stacks that serve ``app`` (ceilings only for the apps they mean something for)."""
    return [s for s in stacks if app in ONLY_FOR_APPS.get(s, (app,))]


def rotated(items: Sequence[str], round_index: int) -> list[str]:
    """``items`` rotated left by ``round_index``."""
    if not items:
        return []
    k = round_index % len(items)
    return [*items[k:], *items[:k]]


@dataclass(frozen=True)
class Step:
    """One measured wrk run, preceded by a warm-up run when ``warmup`` is set."""

    app: str
    round: int
    concurrency: int
    stack: str
    warmup: bool = True


def plan_steps(config: BenchConfig, app: str) -> Iterator[Step]:
    """The order of the measured runs for one app: rounds, then cycles, then stacks."""
    stacks = stacks_for(app, config.stacks)
    for r in range(config.rounds):
        for c in config.concurrencies:
            for stack in rotated(stacks, r):
                yield Step(app, r, c, stack, warmup=r == 0 or config.warmup_every_round)


#: a worker run under callgrind: about 20 s of start-up and shutdown, 2.5 ms per request
CALLGRIND_RUN_S = 20.0
CALLGRIND_REQUEST_S = 0.0025


def estimate_seconds(config: BenchConfig, start_s: float = 1.5) -> float:
    """A rough duration of the whole run: stack start-ups, idle windows, wrk runs, callgrind."""
    total = 0.0
    if config.callgrind:
        per_bound = 2 * CALLGRIND_RUN_S + sum(config.callgrind_requests) * CALLGRIND_REQUEST_S
        total += len(config.callgrind_inflight) * per_bound
    for app in config.apps:
        total += len(stacks_for(app, config.stacks)) * start_s + 2 * config.idle_s
        for step in plan_steps(config, app):
            total += config.duration_s + (config.warmup_s if step.warmup else 0)
    return total


def median(values: Iterable[float]) -> float | None:
    """The median, or None for no values."""
    data = list(values)
    return float(statistics.median(data)) if data else None


def cell(records: Iterable[Record], app: str, stack: str, concurrency: int) -> list[Record]:
    """The records of one (app, stack, concurrency) cell, ordered by round."""
    found = [
        r
        for r in records
        if r["app"] == app and r["stack"] == stack and r["concurrency"] == concurrency
    ]
    return sorted(found, key=lambda r: int(r["round"]))


def role_totals(record: Record) -> tuple[dict[str, float], dict[str, float]]:
    """CPU % summed per role, and the largest RSS (MB) of one process per role."""
    cpu: dict[str, float] = {}
    rss: dict[str, float] = {}
    for proc in record.get("procs", []):
        role = str(proc["role"])
        cpu[role] = cpu.get(role, 0.0) + float(proc["cpu_pct"])
        rss[role] = max(rss.get(role, 0.0), float(proc["rss_mb"]))
    return cpu, rss


def others_cpu(record: Record) -> float:
    """CPU % that neither the stack nor wrk used during the run (other processes' load)."""
    ours = sum(float(p["cpu_pct"]) for p in record.get("procs", []))
    ours += float(record.get("loadgen_cpu_pct", 0.0))
    return max(0.0, float(record.get("machine_cpu_pct", 0.0)) - ours)


def cpu_per_request_us(record: Record, role: str | None = None) -> float | None:
    """Server CPU time per completed request (all of the stack's processes, or one role), in
    microseconds: a cost that depends much less on the machine's load than req/s does."""
    procs = [p for p in record.get("procs", []) if role is None or p["role"] == role]
    requests = int(record.get("requests", 0))
    if not procs or requests <= 0 or any("cpu_s" not in p for p in procs):
        return None
    return 1e6 * sum(float(p["cpu_s"]) for p in procs) / requests


#: a stack answering fewer than this fraction of the cycle's connections at once is flagged.
#: Servers that close every connection answer about half (wrk's latency leaves out the
#: reconnect); uWSGI's synchronous keep-alive workers answer one connection each.
STARVED_FRACTION = 0.25


def served_connections(record: Record) -> float | None:
    """Connections the server was answering at once, by Little's law: req/s x mean latency.

    Close to the cycle's concurrency for a server that serves every connection; far below it
    when connections wait unanswered (wrk's latency counts answered requests only): uWSGI's
    synchronous workers, for one, keep serving one keep-alive connection each while the others
    wait. None when wrk gave no mean latency.
    """
    mean_ms = record.get("latency_ms", {}).get("mean")
    if mean_ms is None:
        return None
    return float(record["rps"]) * float(mean_ms) / 1000.0


def served_in_cell(
    records: Sequence[Record], app: str, stack: str, concurrency: int
) -> float | None:
    """Median over rounds of ``served_connections`` in one cell."""
    values = (served_connections(r) for r in cell(records, app, stack, concurrency))
    return median(v for v in values if v is not None)


def _median_cost(rows: Sequence[Record], role: str | None) -> float | None:
    return median(v for v in (cpu_per_request_us(r, role) for r in rows) if v is not None)


def summarize_cell(rows: Sequence[Record]) -> Record:
    """Medians over rounds of one cell: rps, latency percentiles, CPU and RSS per role."""
    totals = [role_totals(r) for r in rows]
    roles = sorted({role for cpu, _ in totals for role in cpu})
    pcts = sorted({key for r in rows for key in r["latency_ms"]})
    return {
        "rounds": len(rows),
        "rps": median(float(r["rps"]) for r in rows),
        "rps_all": [round(float(r["rps"]), 1) for r in rows],
        "errors": sum(int(sum(r["errors"].values())) for r in rows),
        "requests": sum(int(r["requests"]) for r in rows),
        "latency_ms": {
            k: median(r["latency_ms"][k] for r in rows if k in r["latency_ms"]) for k in pcts
        },
        "cpu_pct": {role: median(cpu.get(role, 0.0) for cpu, _ in totals) for role in roles},
        "rss_mb": {role: median(rss.get(role, 0.0) for _, rss in totals) for role in roles},
        "loadgen_cpu_pct": median(float(r.get("loadgen_cpu_pct", 0.0)) for r in rows),
        "machine_cpu_pct": median(float(r.get("machine_cpu_pct", 0.0)) for r in rows),
        "others_cpu_pct": median(others_cpu(r) for r in rows),
        "cpu_us_per_request": _median_cost(rows, None),
        "cpu_us_per_request_by_role": {role: _median_cost(rows, role) for role in roles},
        "loadavg_1m": median(float(r["loadavg"][0]) for r in rows if r.get("loadavg")),
        "served_connections": median(
            v for v in (served_connections(r) for r in rows) if v is not None
        ),
    }


def summarize(records: Sequence[Record]) -> dict[str, dict[str, dict[str, Record]]]:
    """``summary[app][stack][str(concurrency)]`` for every cell that has records."""
    out: dict[str, dict[str, dict[str, Record]]] = {}
    keys = sorted({(r["app"], r["stack"], int(r["concurrency"])) for r in records})
    for app, stack, c in keys:
        rows = cell(records, app, stack, c)
        out.setdefault(app, {}).setdefault(stack, {})[str(c)] = summarize_cell(rows)
    return out


def paired_ratio(
    records: Sequence[Record], app: str, stack: str, base: str, concurrency: int, key: str = "rps"
) -> float | None:
    """Median over rounds of ``stack``/``base`` for ``key`` (``rps`` or a latency like ``p99``)."""
    mine = {int(r["round"]): _value(r, key) for r in cell(records, app, stack, concurrency)}
    theirs = {int(r["round"]): _value(r, key) for r in cell(records, app, base, concurrency)}
    found = []
    for k in sorted(mine.keys() & theirs.keys()):
        top, bottom = mine[k], theirs[k]
        if top is not None and bottom:
            found.append(top / bottom)
    return median(found)


def _value(record: Record, key: str) -> float | None:
    if key == "rps":
        return float(record["rps"])
    value = record["latency_ms"].get(key)
    return None if value is None else float(value)


def ratios(records: Sequence[Record], baselines: Sequence[str] = BASELINES) -> Record:
    """``ratios[app][stack][str(c)][base] = {"rps": x, "p99": y}`` for every stack vs each base."""
    out: Record = {}
    keys = sorted({(r["app"], r["stack"], int(r["concurrency"])) for r in records})
    present = {(r["app"], r["stack"]) for r in records}
    for app, stack, c in keys:
        for base in baselines:
            if (app, base) not in present:
                continue
            entry = {
                "rps": paired_ratio(records, app, stack, base, c),
                "p99": paired_ratio(records, app, stack, base, c, key="p99"),
            }
            out.setdefault(app, {}).setdefault(stack, {}).setdefault(str(c), {})[base] = entry
    return out
