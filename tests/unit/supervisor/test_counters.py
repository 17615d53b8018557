"""A watcher's request totals: ended processes plus live ones; never down, never garbage."""

from __future__ import annotations

from m2bridge.supervisor.counters import HISTOGRAMS, RESTART_REASONS, SUMMED, Ended, totals
from m2bridge.worker.stats import DURATION_BUCKETS, WorkerStats

BUCKETS = len(DURATION_BUCKETS) + 1


def published(served: int, app: float = 0.002, in_flight: int = 0) -> dict[str, object]:
    stats = WorkerStats(pid=1, started_at=0.0)
    stats.served, stats.errors, stats.rejected, stats.timed_out = served, 1, 2, 3
    stats.in_flight = in_flight
    for _ in range(served):
        stats.app_time.observe(app)
        stats.queue_time.observe(0.0)
    return stats.snapshot()


def test_a_watcher_with_nothing_counted_has_zero_totals_and_empty_histograms():
    summed, latency = totals(Ended(), [])
    assert summed == {"served": 0, "errors": 0, "rejected": 0, "timed_out": 0, "in_flight": 0}
    assert latency["buckets"] == list(DURATION_BUCKETS)
    for name in HISTOGRAMS:
        assert latency[name] == {"counts": [0] * BUCKETS, "sum": 0.0}


def test_totals_add_the_ended_processes_to_the_live_ones():
    ended = Ended()
    ended.add(published(5))
    summed, latency = totals(ended, [published(7, in_flight=2), published(1, app=20.0)])
    assert summed == {"served": 13, "errors": 3, "rejected": 6, "timed_out": 9, "in_flight": 2}
    assert sum(latency["app_time"]["counts"]) == 13
    assert latency["app_time"]["counts"][-1] == 1  # 20 s: past the last bound (+Inf)
    assert latency["app_time"]["sum"] == 12 * 0.002 + 20.0
    assert sum(latency["queue_time"]["counts"]) == 13


def test_totals_do_not_change_what_ended_holds():
    ended = Ended()
    ended.add(published(2))
    totals(ended, [published(3)])
    assert ended.counters["served"] == 2
    assert sum(ended.histograms["app_time"]["counts"]) == 2


def test_garbage_counters_count_as_nothing():
    ended = Ended()
    ended.add({"served": "12", "errors": True, "rejected": -4, "timed_out": 2.5, "in_flight": None})
    ended.add({"queue_time": "x", "app_time": {"counts": [1, 2], "sum": 1.0}})
    ended.add({"app_time": {"counts": [True] + [0] * (BUCKETS - 1), "sum": "many"}})
    assert ended.counters == dict.fromkeys(SUMMED, 0)
    assert ended.histograms["app_time"] == {"counts": [0] * BUCKETS, "sum": 0.0}
    assert ended.histograms["queue_time"] == {"counts": [0] * BUCKETS, "sum": 0.0}
    summed, _ = totals(ended, [{"in_flight": "3"}])
    assert summed["in_flight"] == 0


def test_every_restart_reason_is_named():
    assert RESTART_REASONS == (
        "exit", "crash", "flapping", "max_requests", "max_rss", "reload", "hung"
    )  # fmt: skip
