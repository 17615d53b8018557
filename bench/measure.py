"""Measuring one cycle: run wrk (bounded) with its own CPU time, and psutil snapshots of a stack.

CPU of a server process over a cycle is the difference of its ``cpu_times`` (user + system)
between two snapshots, divided by the wall time between them; RSS is read at the second one.
wrk's own CPU comes from ``wait4``'s resource usage, so the load generator's share of the two
cores is in every record too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from .stacks import Stack

log = logging.getLogger("bench.measure")

#: extra seconds wrk may take past its ``-d`` before it is killed.
WRK_GRACE_S = 20.0
#: Before a measured run the machine must be this quiet (busy CPU %, 200 = both cores)...
QUIET_PCT = 15.0
#: ...over a window this long (s), waiting at most SETTLE_MAX_S.
QUIET_WINDOW_S = 0.25
SETTLE_MAX_S = 5.0
MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class ProcSample:
    """One process at one instant."""

    role: str
    pid: int
    name: str
    cpu_s: float
    rss_bytes: int


@dataclass(frozen=True)
class Snapshot:
    """Every process of a stack at one instant (monotonic ``at``), and the machine's busy time."""

    at: float
    procs: dict[int, ProcSample]
    machine_busy_s: float = 0.0


def machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (every process, ours or not)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def settle(
    max_s: float = SETTLE_MAX_S,
    quiet_pct: float = QUIET_PCT,
    window_s: float = QUIET_WINDOW_S,
    busy_s: Callable[[], float] = machine_busy_s,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until the machine is quiet (a stack still working off a backlog, say); return the
    seconds waited, ``max_s`` or a little more when it never got quiet."""
    start = clock()
    while True:
        begin_busy, begin = busy_s(), clock()
        sleep(window_s)
        busy_pct = 100.0 * (busy_s() - begin_busy) / max(clock() - begin, 1e-6)
        waited = clock() - start
        if busy_pct <= quiet_pct or waited >= max_s:
            if busy_pct > quiet_pct:
                log.info("machine %.0f%% busy after %.1f s: measuring anyway", busy_pct, waited)
            return round(waited, 2)


def machine_busy_pct(before: Snapshot, after: Snapshot) -> float:
    """The whole machine's busy CPU % between two snapshots (200 = both cores)."""
    wall = max(after.at - before.at, 1e-6)
    return round(100.0 * (after.machine_busy_s - before.machine_busy_s) / wall, 1)


def snapshot(stack: Stack) -> Snapshot:
    """Sample CPU time and RSS of every live process of ``stack``."""
    procs: dict[int, ProcSample] = {}
    for role, proc in stack.processes():
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                sample = ProcSample(
                    role, proc.pid, proc.name(), times.user + times.system, proc.memory_info().rss
                )
        except psutil.Error:
            continue
        procs[proc.pid] = sample
    return Snapshot(time.monotonic(), procs, machine_busy_s())


def usage(before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    """Per process: role, pid, name, CPU % over the interval (100 = one core), CPU seconds and
    RSS in MB."""
    wall = max(after.at - before.at, 1e-6)
    rows = []
    for pid, now in sorted(after.procs.items()):
        start = before.procs.get(pid)
        cpu = now.cpu_s - (start.cpu_s if start else 0.0)
        rows.append(
            {
                "role": now.role,
                "pid": pid,
                "name": now.name,
                "cpu_pct": round(100.0 * cpu / wall, 2),
                "cpu_s": round(cpu, 4),
                "rss_mb": round(now.rss_bytes / MB, 2),
            }
        )
    return rows


@dataclass(frozen=True)
class WrkRun:
    """What one wrk process printed, its exit status, and its own CPU time."""

    stdout: str
    stderr: str
    returncode: int
    cpu_s: float
    wall_s: float


def run_wrk(argv: list[str], duration_s: float) -> WrkRun:
    """Run wrk to completion (killed if it overruns ``duration_s`` by ``WRK_GRACE_S``)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    watchdog = threading.Timer(duration_s + WRK_GRACE_S, _kill, (proc.pid,))
    watchdog.start()
    try:
        out, err = _read_all(proc)
        _, status, rusage = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted: never leave wrk running
        _kill(proc.pid)
        proc.wait()
        raise
    finally:
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = rusage.ru_utime + rusage.ru_stime
    return WrkRun(out, err, proc.returncode, cpu, time.monotonic() - started)


def _read_all(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Read stdout then stderr to EOF (wrk writes only a few lines to stderr) and close them."""
    texts = []
    for stream in (proc.stdout, proc.stderr):
        if stream is None:
            texts.append("")
            continue
        with stream:
            texts.append(stream.read().decode("utf-8", "replace"))
    return texts[0], texts[1]


def _kill(pid: int) -> None:
    log.error("stopping wrk pid %d (overran its duration, or the bench was interrupted)", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
