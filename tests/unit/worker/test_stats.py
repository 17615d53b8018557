"""Worker counters and their atomically replaced JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from m2bridge.environment import STATS_FILE
from m2bridge.worker.stats import (
    DURATION_BUCKETS,
    PUBLISH_INTERVAL,
    Histogram,
    StatsFile,
    WorkerStats,
    publish_forever,
    stats_file_for,
    stop_publishing,
    write_atomically,
)


def test_snapshot_has_the_published_keys():
    stats = WorkerStats(pid=42, started_at=1000.5)
    stats.served, stats.in_flight, stats.errors = 7, 2, 1
    stats.rejected, stats.timed_out = 4, 3
    stats.app_time.observe(0.002)
    empty = [0] * (len(DURATION_BUCKETS) + 1)
    assert stats.snapshot() == {
        "pid": 42,
        "served": 7,
        "in_flight": 2,
        "started_at": 1000.5,
        "errors": 1,
        "rejected": 4,
        "timed_out": 3,
        "queue_time": {"counts": empty, "sum": 0.0},
        "app_time": {"counts": [0, 0, 1, *empty[3:]], "sum": 0.002},
        "heartbeat": None,
    }
    assert stats.snapshot(heartbeat=1234.5)["heartbeat"] == 1234.5


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.0, 0), (0.0005, 0), (0.00051, 1), (0.001, 1), (10.0, 13), (10.5, 14), (1e9, 14)],
)
def test_a_duration_lands_in_the_first_bucket_whose_bound_holds_it(seconds, bucket):
    histogram = Histogram()
    histogram.observe(seconds)
    assert histogram.counts.index(1) == bucket
    assert sum(histogram.counts) == 1
    assert histogram.sum == seconds


def test_a_new_rejection_republishes_the_file(tmp_path):
    stats = WorkerStats(pid=42, started_at=1.0)
    published = StatsFile(str(tmp_path / "s.json"), stats)
    assert published.publish()
    assert not published.publish()
    stats.rejected += 1
    assert published.publish()
    assert json.loads((tmp_path / "s.json").read_text())["rejected"] == 1


def test_write_atomically_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "stats.json"
    path.write_text("old")
    write_atomically(str(path), {"served": 3})
    assert json.loads(path.read_text()) == {"served": 3}
    assert os.listdir(tmp_path) == ["stats.json"]


def test_publish_writes_only_when_counters_changed(tmp_path):
    path = tmp_path / "stats.json"
    stats = WorkerStats()
    stats_file = StatsFile(str(path), stats)
    assert stats_file.publish() is True
    assert stats_file.publish() is False
    stats.served += 1
    assert stats_file.publish() is True
    assert json.loads(path.read_text())["served"] == 1
    assert stats_file.publish(force=True) is True


def test_publish_to_a_missing_directory_warns_once_and_never_raises(tmp_path, caplog):
    stats = WorkerStats()
    stats_file = StatsFile(str(tmp_path / "missing" / "stats.json"), stats)
    assert stats_file.publish() is False
    stats.served += 1
    assert stats_file.publish() is False
    warnings = [r for r in caplog.records if "cannot write stats file" in r.getMessage()]
    assert len(warnings) == 1


class Stop(Exception):
    pass


def test_publish_forever_waits_for_readiness_then_publishes_changes(tmp_path):
    stats = WorkerStats(pid=42, started_at=1.0)
    stats_file = StatsFile(str(tmp_path / "s.json"), stats)
    events: list[str] = []

    def sleep(seconds: float) -> None:
        assert seconds == PUBLISH_INTERVAL
        events.append("sleep")
        stats.served += 1
        if len(events) > 3:
            raise Stop

    def ready() -> None:
        assert not (tmp_path / "s.json").exists()
        events.append("ready")

    with pytest.raises(Stop):
        publish_forever(stats_file, sleep, ready)
    assert events == ["ready", "sleep", "sleep", "sleep"]
    assert json.loads((tmp_path / "s.json").read_text())["served"] == 2


def test_stop_publishing_kills_the_loop_then_writes_the_final_counters(tmp_path):
    stats = WorkerStats(pid=42, started_at=1.0)
    stats_file = StatsFile(str(tmp_path / "s.json"), stats)
    killed: list[bool] = []

    class Publisher:
        def kill(self) -> None:
            killed.append(True)

    stats.served = 5
    stop_publishing(Publisher(), stats_file)
    assert killed == [True]
    final = json.loads((tmp_path / "s.json").read_text())
    assert final["served"] == 5
    assert final["heartbeat"] is None  # stopped beating on purpose: not hung
    stop_publishing(None, None)  # no stats file: nothing to do


def test_the_stats_file_is_the_configured_one_else_the_supervisors():
    stats = WorkerStats()
    env = {STATS_FILE: "/run/w.1.json"}
    configured, supervised = (
        stats_file_for("/tmp/s.json", stats, env),
        stats_file_for(None, stats, env),
    )
    assert configured is not None
    assert configured.path == "/tmp/s.json"
    assert supervised is not None
    assert supervised.path == "/run/w.1.json"
    assert stats_file_for(None, stats, {}) is None


def test_publish_forever_without_ready_publishes_before_its_first_sleep(tmp_path: Path) -> None:
    stats = WorkerStats(pid=42, started_at=1.0)
    path = tmp_path / "s.json"
    seen: list[int] = []

    def sleep(seconds: float) -> None:
        seen.append(json.loads(path.read_text())["pid"])
        raise Stop

    with pytest.raises(Stop):
        publish_forever(StatsFile(str(path), stats), sleep)
    assert seen == [42]


def test_publish_forever_beats_every_interval_even_when_nothing_changed(tmp_path: Path) -> None:
    stats = WorkerStats(pid=42, started_at=1.0)
    path = tmp_path / "s.json"
    clock = iter([100.0, 100.5, 101.0])
    beats: list[float] = []

    def sleep(seconds: float) -> None:
        assert seconds == PUBLISH_INTERVAL
        beats.append(json.loads(path.read_text())["heartbeat"])
        if len(beats) == 3:
            raise Stop

    with pytest.raises(Stop):
        publish_forever(StatsFile(str(path), stats, clock=lambda: next(clock)), sleep)
    assert beats == [100.0, 100.5, 101.0]  # no request served, yet three writes
