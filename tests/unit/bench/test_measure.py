"""CPU/RSS arithmetic between two process snapshots (bench/measure.py, no process started)."""

from __future__ import annotations

import pytest

from bench.measure import ProcSample, Snapshot, machine_busy_pct, settle, usage


def snap(at: float, busy: float, *procs: ProcSample) -> Snapshot:
    return Snapshot(at, {p.pid: p for p in procs}, busy)


def test_usage_is_cpu_seconds_over_wall_time_per_process() -> None:
    before = snap(10.0, 0.0, ProcSample("worker", 7, "python", 1.0, 10 * 2**20))
    after = snap(12.0, 0.0, ProcSample("worker", 7, "python", 2.5, 30 * 2**20))
    (row,) = usage(before, after)
    assert row == {
        "role": "worker",
        "pid": 7,
        "name": "python",
        "cpu_pct": 75.0,
        "cpu_s": 1.5,
        "rss_mb": 30.0,
    }


def test_a_process_born_during_the_interval_counts_all_its_cpu_and_a_dead_one_drops() -> None:
    gone = ProcSample("worker", 1, "python", 5.0, 0)
    born = ProcSample("worker", 2, "python", 0.5, 2**20)
    rows = usage(snap(0.0, 0.0, gone), snap(1.0, 0.0, born))
    assert [(r["pid"], r["cpu_pct"]) for r in rows] == [(2, 50.0)]


def test_machine_busy_is_in_percent_of_one_core() -> None:
    assert machine_busy_pct(snap(0.0, 100.0), snap(2.0, 103.0)) == pytest.approx(150.0)


class FakeMachine:
    """A clock and a busy-CPU counter: each window is busy at the next of ``loads`` (%)."""

    def __init__(self, loads: list[float]) -> None:
        self.now = 0.0
        self.busy = 0.0
        self.loads = loads

    def sleep(self, seconds: float) -> None:
        load = self.loads.pop(0) if self.loads else 0.0
        self.busy += seconds * load / 100.0
        self.now += seconds

    def settle(self, max_s: float = 5.0) -> float:
        return settle(max_s, 15.0, 0.25, lambda: self.busy, lambda: self.now, self.sleep)


def test_settle_waits_until_a_window_is_quiet() -> None:
    machine = FakeMachine([120.0, 90.0, 14.0, 150.0])
    assert machine.settle() == pytest.approx(0.75)  # two busy windows, then a quiet one


def test_settle_returns_at_once_on_a_quiet_machine() -> None:
    assert FakeMachine([3.0]).settle() == pytest.approx(0.25)


def test_settle_gives_up_after_its_bound_on_a_machine_that_stays_busy() -> None:
    machine = FakeMachine([100.0] * 100)
    assert machine.settle(max_s=1.0) == pytest.approx(1.0)
    assert len(machine.loads) == 96  # four windows, no more
