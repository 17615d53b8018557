"""The run: for each app start every stack, sample idle, run the interleaved cycles, stop.

Per app: all stacks start (each on its own port) and are probed with the benchmark's request;
one idle window samples all of them; then ``cycles.plan_steps`` drives wrk (a warm-up, then the
measured run) and each measured run becomes a record; a second idle window and the final RSS
close the app; every process is stopped by PID. After all apps, with no stack running, the
worker's instructions per hello request are counted under callgrind (``--callgrind``).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from . import cycles, instructions, m2stacks, measure, stacks, supervised, wrk
from .stacks import Stack, StackError
from .workload import WORKLOADS

log = logging.getLogger("bench.runner")

DRAIN_TIMEOUT_S = 15.0

Starter = Callable[[str, int, Path], Stack]
STARTERS: dict[str, Starter] = {
    "m2-zmq": supervised.start_zmq_supervised,
    "fd": supervised.start_fd_supervised,
    "gunicorn-sync": partial(stacks.start_gunicorn, worker_class="sync"),
    "gunicorn-gevent": partial(stacks.start_gunicorn, worker_class="gevent"),
    "uwsgi": stacks.start_uwsgi,
    "uwsgi-keepalive": stacks.start_uwsgi_keepalive,
    "granian": stacks.start_granian,
    "m2-static": m2stacks.start_static,
    "m2-canned": m2stacks.start_canned,
}
#: ``--direct``: the m2bridge stacks without the supervisor (plain ``m2bridge serve`` processes).
DIRECT: dict[str, Starter] = {
    "m2-zmq": m2stacks.start_zmq_direct,
    "fd": m2stacks.start_fd_direct,
}


def starter(name: str, direct: bool) -> Starter:
    """How to start stack ``name``: the supervisor for m2bridge stacks unless ``direct``."""
    if direct and name in DIRECT:
        return DIRECT[name]
    return STARTERS[name]


class Run:
    """Accumulates the raw data of one benchmark run (the ``records`` etc. of the JSON)."""

    def __init__(self, config: cycles.BenchConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.records: list[dict[str, Any]] = []
        self.idle: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.supervisor_stats: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.stack_how: dict[str, str] = {}
        #: the callgrind figure (``bench/instructions.py``), None when not measured
        self.worker_instructions: dict[str, Any] | None = None
        self.scripts = {app: self._write_script(app) for app in config.apps}

    def _write_script(self, app: str) -> str:
        work = WORKLOADS[app]
        text = wrk.lua_script(work.method, work.body_size, work.content_type)
        path = self.workdir / f"{app}.lua"
        path.write_text(text)
        return str(path)

    def fail(self, app: str, stack: str, reason: str) -> None:
        log.error("%s/%s: %s", stack, app, reason)
        self.failures.append({"app": app, "stack": stack, "error": reason})


def start_stacks(run: Run, app: str) -> dict[str, Stack]:
    """Start and probe every stack that serves ``app``; failures are recorded and skipped."""
    workdir = run.workdir / app
    workdir.mkdir(parents=True, exist_ok=True)
    started: dict[str, Stack] = {}
    for name in cycles.stacks_for(app, run.config.stacks):
        stack: Stack | None = None
        try:
            start = starter(name, run.config.direct)
            stack = start(app, run.config.workers, workdir)
            stacks.wait_ready(stack)
        except (StackError, OSError) as exc:
            run.fail(app, name, f"did not start: {exc}")
            if stack is not None:
                stack.stop()
            continue
        run.stack_how[name] = stack.how
        started[name] = stack
    return started


def sample_idle(run: Run, app: str, running: dict[str, Stack], phase: str) -> None:
    """One idle window over all stacks at once: CPU and RSS of every process."""
    before = {name: measure.snapshot(stack) for name, stack in running.items()}
    time.sleep(run.config.idle_s)
    for name, stack in running.items():
        procs = measure.usage(before[name], measure.snapshot(stack))
        run.idle.append({"app": app, "stack": name, "phase": phase, "procs": procs})


def collect_supervisor_stats(run: Run, app: str, running: dict[str, Stack]) -> None:
    """The supervisor's own ``stats`` (per-worker requests served, CPU, RSS) after the run."""
    for name, stack in running.items():
        if not stack.stats_argv:
            continue
        try:
            done = subprocess.run(
                stack.stats_argv, capture_output=True, text=True, timeout=15, check=True
            )
            data = json.loads(done.stdout)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            run.fail(app, name, f"supervisor stats unavailable: {exc}")
            continue
        run.supervisor_stats.append({"app": app, "stack": name, "stats": data})


def drain(stack: Stack, timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until the stack answers one request: connections wrk left queued are served first.

    A synchronous server still owes answers to the warm-up's (or the previous cycle's) queued
    connections after wrk closed them; measuring before they drain would starve the run.
    """
    try:
        stacks.fetch(stack.url, stack.app, timeout=timeout)
    except (OSError, http.client.HTTPException) as exc:
        log.warning("%s/%s: drain request failed: %s", stack.name, stack.app, exc)


def run_step(run: Run, step: cycles.Step, stack: Stack) -> dict[str, Any]:
    """Warm up, then one measured wrk run with CPU/RSS sampling; returns the record.

    Raises:
        WrkOutputError: wrk printed nothing readable.
        StackError: a process of the stack died.
    """
    script = run.scripts[step.app]
    if step.warmup:
        warm = wrk.wrk_argv(stack.url, step.concurrency, run.config.warmup_s, script)
        measure.run_wrk(warm, run.config.warmup_s)
    drain(stack)
    settled_s = measure.settle()  # the previous stack may still work off its backlog
    loadavg = [round(x, 2) for x in os.getloadavg()]
    argv = wrk.wrk_argv(stack.url, step.concurrency, run.config.duration_s, script)
    before = measure.snapshot(stack)
    done = measure.run_wrk(argv, run.config.duration_s)
    after = measure.snapshot(stack)
    stack.check_alive()
    result = wrk.parse_wrk_output(done.stdout + "\n" + done.stderr)
    record = make_record(step, result, loadavg)
    record["procs"] = measure.usage(before, after)
    record["loadgen_cpu_pct"] = round(100.0 * done.cpu_s / max(done.wall_s, 1e-6), 1)
    record["machine_cpu_pct"] = measure.machine_busy_pct(before, after)
    record["settle_s"] = settled_s
    return record


def make_record(step: cycles.Step, result: wrk.WrkResult, loadavg: list[float]) -> dict[str, Any]:
    """The JSON record of one measured run (the resource fields are added by the caller)."""
    return {
        "app": step.app,
        "stack": step.stack,
        "round": step.round,
        "concurrency": step.concurrency,
        "rps": round(result.rps, 1),
        "requests": result.requests,
        "bytes": result.bytes_read,
        "duration_s": round(result.duration_s, 3),
        "errors": result.errors,
        "latency_ms": {k: round(v, 3) for k, v in result.latency_ms.items()},
        "loadavg": loadavg,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run_app(run: Run, app: str, progress: Callable[[str], None]) -> None:
    """Everything for one app: start, idle sample, the cycles, idle sample, stop."""
    running = start_stacks(run, app)
    try:
        sample_idle(run, app, running, "before")
        for step in cycles.plan_steps(run.config, app):
            stack = running.get(step.stack)
            if stack is None:
                continue
            try:
                record = run_step(run, step, stack)
            except (wrk.WrkOutputError, StackError) as exc:
                run.fail(app, step.stack, f"round {step.round} c={step.concurrency}: {exc}")
                running.pop(step.stack).stop()
                continue
            run.records.append(record)
            progress(_describe(record))
        sample_idle(run, app, running, "after")
        collect_supervisor_stats(run, app, running)
    finally:
        for stack in running.values():
            stack.stop()


def _describe(r: dict[str, Any]) -> str:
    errors = sum(r["errors"].values())
    p99 = r["latency_ms"].get("p99", float("nan"))
    return (
        f"{r['app']:5} r{r['round']} c={r['concurrency']:<3} {r['stack']:15} "
        f"{r['rps']:9.0f} req/s  p99 {p99:7.2f} ms  errors {errors}  load {r['loadavg'][0]}"
    )


def measure_instructions(run: Run, progress: Callable[[str], None]) -> dict[str, Any] | None:
    """The callgrind figure of the run, or None (recorded as a failure) if it could not be had."""
    progress("callgrind: the m2bridge worker's instructions per hello request")
    try:
        return instructions.measure_worker(
            run.config.callgrind_requests, run.config.callgrind_inflight
        )
    except instructions.CallgrindError as exc:
        run.fail("hello", "m2-zmq", f"callgrind: {exc}")
        return None


def execute(config: cycles.BenchConfig, progress: Callable[[str], None]) -> Run:
    """Run the whole benchmark in a temporary work directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="m2bridge-bench-") as tmp:
        run = Run(config, Path(tmp))
        try:
            for app in config.apps:
                run_app(run, app, progress)
            if config.callgrind:
                run.worker_instructions = measure_instructions(run, progress)
        except KeyboardInterrupt:
            log.error("interrupted: reporting the %d runs measured so far", len(run.records))
            run.notes.append(f"INTERRUPTED after {len(run.records)} measured runs: partial result")
    return run
