"""``stats.Sampler``: CPU % over the last sampling interval(s), right from the first sample.

Real child processes (a Python busy loop, a sleeper) stand in for workers; each is stopped
by PID.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from m2bridge.supervisor.stats import Sampler

BUSY = "while True: pass"
#: Busy for one second, then asleep.
BUSY_THEN_IDLE = (
    "import time\nend = time.monotonic() + 1\nwhile time.monotonic() < end: pass\ntime.sleep(60)"
)
IDLE = "import time; time.sleep(60)"


@pytest.fixture
def spawn() -> Iterator[Callable[[str], int]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(code: str) -> int:
        proc = subprocess.Popen([sys.executable, "-c", code])
        started.append(proc)
        return proc.pid

    yield run
    for proc in started:
        proc.kill()
        proc.wait(5)


def test_first_sample_of_a_busy_process_reports_its_cpu_since_it_started(
    spawn: Callable[[str], int],
) -> None:
    pid = spawn(BUSY)
    time.sleep(0.6)
    row = Sampler().sample(pid)
    assert row["cpu"] > 20
    assert row["rss"] > 0
    assert row["fds"] >= 3


def test_first_sample_after_ticks_reports_the_cpu_of_the_last_interval(
    spawn: Callable[[str], int],
) -> None:
    busy, idle = spawn(BUSY), spawn(IDLE)
    sampler = Sampler(interval=0.2)
    deadline = time.monotonic() + 0.7
    while time.monotonic() < deadline:
        sampler.tick({busy, idle})
        time.sleep(0.05)
    assert sampler.sample(busy)["cpu"] > 20
    assert sampler.sample(idle)["cpu"] < 5


def test_cpu_covers_the_recent_intervals_not_the_whole_life(spawn: Callable[[str], int]) -> None:
    pid = spawn(BUSY_THEN_IDLE)
    sampler = Sampler(interval=0.2)
    deadline = time.monotonic() + 2.0  # busy for the first second, idle for the last
    while time.monotonic() < deadline:
        sampler.tick({pid})
        time.sleep(0.05)
    assert sampler.sample(pid)["cpu"] < 5


def test_tick_forgets_processes_that_are_gone_and_sample_reports_none_for_them(
    spawn: Callable[[str], int],
) -> None:
    pid = spawn(IDLE)
    sampler = Sampler(interval=0.0)
    sampler.tick({pid})
    assert sampler.tracked() == {pid}
    sampler.tick(set())
    assert sampler.tracked() == set()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(5)
    assert sampler.sample(gone.pid) == {"cpu": None, "cpu_seconds": None, "rss": None, "fds": None}
