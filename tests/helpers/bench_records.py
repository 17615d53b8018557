"""Record factories shared by the bench unit tests."""

from __future__ import annotations

from typing import Any


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
