"""Record factories and a sample result document shared by the bench unit tests."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.cycles import BenchConfig


def make_record(
    app: str,
    stack: str,
    rnd: int,
    c: int,
    rps: float,
    p99: float = 5.0,
    procs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One measured cycle as ``bench.runner.run_step`` writes it."""
    return {
        "app": app,
        "stack": stack,
        "round": rnd,
        "concurrency": c,
        "rps": rps,
        "requests": int(rps),
        "duration_s": 1.0,
        "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
        "latency_ms": {"p50": p99 / 4, "p90": p99 / 2, "p95": p99 / 1.5, "p99": p99},
        "loadavg": [1.0, 1.0, 1.0],
        "procs": procs if procs is not None else [],
        "loadgen_cpu_pct": 30.0,
        "machine_cpu_pct": 190.0,
    }


def proc(role: str, cpu: float, rss: float, pid: int = 1) -> dict[str, Any]:
    return {
        "role": role,
        "pid": pid,
        "name": "x",
        "cpu_pct": cpu,
        "cpu_s": cpu / 100,
        "rss_mb": rss,
    }


def idle_sample(app: str, stack: str, procs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"app": app, "stack": stack, "phase": "after", "procs": procs}


#: The machine block of a result document.
MACHINE = {
    "cpus": 2,
    "cpu_model": "Test CPU",
    "python": "3.11",
    "wrk": "wrk 4.1",
    "mongrel2": "1.12.2",
    "packages": {"gunicorn": "1"},
    "loadavg_at_start": [0.5, 0.5, 0.5],
}


SUPERVISOR_STATS = {
    "watchers": [
        {"name": "mongrel2", "processes": [{"pid": 1, "served": None, "errors": None}]},
        {"name": "app", "processes": [{"served": 15, "errors": 0}, {"served": 6, "errors": 2}]},
    ]
}


#: The callgrind block of a result document (``bench.instructions.measure_worker``).
WORKER_INSTRUCTIONS = {
    "app": "hello",
    "protocol": "tnetstring",
    "topology": "relay",
    "valgrind": "valgrind-3.19.0",
    "requests": [500, 2500],
    "per_request": {"1": 166449.0, "32": 58000.0},
    "seconds": 95.6,
}


def sample_result(callgrind: bool = True) -> dict[str, Any]:
    """A small result document: hello on m2-zmq and gunicorn-gevent at c=10 and c=50, with the
    callgrind figure unless ``callgrind`` is false (as results written before it existed)."""
    config = BenchConfig(
        apps=("hello",), stacks=("m2-zmq", "gunicorn-gevent"), concurrencies=(10, 50), rounds=1
    )
    procs = [proc("worker", 60.0, 30.0), proc("mongrel2", 40.0, 15.0)]
    records = [
        make_record("hello", "m2-zmq", 0, 10, 9000.0, procs=procs),
        make_record("hello", "m2-zmq", 0, 50, 12000.0, procs=procs),
        make_record("hello", "gunicorn-gevent", 0, 10, 3000.0, p99=90.0),
        make_record("hello", "gunicorn-gevent", 0, 50, 4000.0, p99=120.0),
    ]
    records[3]["errors"]["timeout"] = 7
    raw = {
        "date": "2026-11-23T06:00:00+00:00",
        "commit": "abc1234",
        "stacks": {"m2-zmq": "supervised <zmq>", "gunicorn-gevent": "gunicorn"},
        "apps": {"hello": "handlers.hello:app"},
        "records": records,
        "idle": [idle_sample("hello", "m2-zmq", [proc("supervisor", 0.5, 28.0), *procs])],
        "failures": [{"app": "hello", "stack": "uwsgi", "error": "did not start: boom"}],
        "supervisor_stats": [{"app": "hello", "stack": "m2-zmq", "stats": SUPERVISOR_STATS}],
        "notes": ["wall time 10 s"],
    }
    if callgrind:
        raw["worker_instructions"] = dict(WORKER_INSTRUCTIONS)
    return report.build_result(config, MACHINE, raw)
