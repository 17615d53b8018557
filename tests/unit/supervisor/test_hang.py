"""The hung-worker watchdog: when a worker's heartbeat is missed, the ``hang_timeout`` option,
and what the watcher does with a hung process (no process started: a stand-in)."""

from __future__ import annotations

import io
import json
import logging
import textwrap
from pathlib import Path

import pytest

from m2bridge.errors import ConfigError
from m2bridge.supervisor.plan import ProcessView
from m2bridge.supervisor.process import Slot
from m2bridge.supervisor.stack import WatcherSpec, load_stack, worker_stack
from m2bridge.supervisor.watcher import Beat, Watcher, missed_heartbeat, observe_beat

# -- the decision, pure --


def test_a_first_heartbeat_is_a_beat_seen_now():
    assert observe_beat(None, 1700000000.5, now=10.0) == Beat(1700000000.5, 10.0)


def test_the_same_heartbeat_keeps_the_time_it_was_first_seen():
    first = Beat(1700000000.5, 10.0)
    assert observe_beat(first, 1700000000.5, now=14.0) is first


def test_a_new_heartbeat_is_seen_now_whatever_its_wall_clock_value():
    first = Beat(1700000000.5, 10.0)
    assert observe_beat(first, 1600000000, now=14.0) == Beat(1600000000.0, 14.0)  # clock stepped


@pytest.mark.parametrize("heartbeat", [None, "1700000000", True, [1.0]])
def test_no_numeric_heartbeat_means_nothing_to_watch(heartbeat):
    assert observe_beat(Beat(1.0, 10.0), heartbeat, now=50.0) is None


@pytest.mark.parametrize(
    ("seen_at", "now", "timeout", "missed"),
    [
        (10.0, 12.0, 2.0, None),  # exactly the timeout: not yet
        (10.0, 12.5, 2.0, 2.5),
        (10.0, 41.0, 30.0, 31.0),
        (10.0, 1000.0, 0.0, None),  # 0: the watchdog is off
    ],
)
def test_a_heartbeat_missed_longer_than_hang_timeout_is_a_hang(seen_at, now, timeout, missed):
    assert missed_heartbeat(Beat(1.0, seen_at), now, timeout) == missed


def test_a_process_without_heartbeat_is_never_hung():
    assert missed_heartbeat(None, 1e9, 2.0) is None


# -- the option --


def load(tmp_path: Path, text: str):
    path = tmp_path / "demo.toml"
    path.write_text(textwrap.dedent(text))
    return load_stack(path)


def test_hang_timeout_defaults_to_30_s_and_is_read(tmp_path):
    stack = load(tmp_path, "[watchers.a]\ncmd='x'\n[watchers.b]\ncmd='x'\nhang_timeout = 2.5\n")
    assert stack.watchers["a"].hang_timeout == 30.0
    assert stack.watchers["b"].hang_timeout == 2.5
    assert worker_stack(["x"], 1, 5.0, "demo").watchers["demo"].hang_timeout == 30.0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hang_timeout = -1", "watchers.w.hang_timeout: expected a number >= 0.0, got -1"),
        ("hang_timeout = 'long'", "watchers.w.hang_timeout: expected a number >= 0.0"),
        ("hang_timout = 5", "watchers.w.hang_timout: unknown key (did you mean 'hang_timeout'?)"),
    ],
)
def test_a_bad_hang_timeout_names_the_key(tmp_path, line, expected):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"[watchers.w]\ncmd='x'\n{line}\n")
    assert expected in str(info.value)


# -- the watcher, with a stand-in process --


class StandIn:
    """What the watcher uses of a ``WorkerProcess``; ``kill`` is recorded, not done."""

    def __init__(self, stats_file: Path | None, pid: int = 4242) -> None:
        self.pid, self.wid, self.slot = pid, 1, Slot("hello", 1)
        self.stats_file = stats_file
        self.ready, self.retire, self.killed = True, False, False
        self.stopping_since: float | None = None
        self.max_requests = 0

    def kill(self) -> None:
        self.killed = True

    def view(self) -> ProcessView:
        return ProcessView(self.pid, self.wid, ready=self.ready, killed=self.killed)


class ReadyLauncher:
    rolling = True

    def is_ready(self, process: object, now: float) -> bool:
        return True


def watcher_with(process: StandIn, hang_timeout: float = 2.0) -> Watcher:
    spec = WatcherSpec(name="hello", cmd=("x",), hang_timeout=hang_timeout)
    watcher = Watcher(spec, ReadyLauncher(), io.BytesIO())  # type: ignore[arg-type]
    watcher.processes[process.pid] = process  # type: ignore[assignment]
    return watcher


def beat(path: Path, heartbeat: object, pid: int = 4242) -> None:
    path.write_text(json.dumps({"pid": pid, "served": 0, "heartbeat": heartbeat}))


def test_a_silent_worker_is_killed_counted_and_logged_as_hung(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "m2bridge.supervisor")
    stats = tmp_path / "hello.1.json"
    process = StandIn(stats)
    watcher = watcher_with(process)
    beat(stats, 1000.0)
    watcher.tick(100.0)
    beat(stats, 1000.5)
    watcher.tick(101.0)  # a new beat: seen at 101
    watcher.tick(103.0)  # silent 2 s: not over the timeout
    assert not process.killed
    watcher.tick(104.0)
    assert process.killed
    assert watcher.restarts["hung"] == 1
    assert "hello.1 (pid 4242) missed its heartbeat for 3 s (hang_timeout = 2): hung" in caplog.text
    watcher.tick(110.0)  # killed, not yet reaped: not counted twice
    assert watcher.restarts["hung"] == 1


def test_a_beating_worker_is_left_alone(tmp_path):
    stats = tmp_path / "hello.1.json"
    process = StandIn(stats)
    watcher = watcher_with(process)
    for step in range(10):
        beat(stats, 1000.0 + step)
        watcher.tick(100.0 + step)
    assert not process.killed
    assert watcher.restarts["hung"] == 0


@pytest.mark.parametrize(
    ("heartbeat", "pid", "hang_timeout"),
    [
        (None, 4242, 2.0),  # the final write of a worker that stops on its own
        (1000.0, 999, 2.0),  # another process's file
        (1000.0, 4242, 0.0),  # the watchdog is off
    ],
)
def test_no_heartbeat_of_its_own_or_no_watchdog_never_kills(tmp_path, heartbeat, pid, hang_timeout):
    stats = tmp_path / "hello.1.json"
    process = StandIn(stats)
    watcher = watcher_with(process, hang_timeout)
    beat(stats, heartbeat, pid)
    for now in (100.0, 110.0, 200.0):
        watcher.tick(now)
    assert not process.killed


def test_a_process_without_a_stats_file_is_never_hung():
    process = StandIn(None)
    watcher = watcher_with(process)
    for now in (100.0, 110.0, 200.0):
        watcher.tick(now)
    assert not process.killed
