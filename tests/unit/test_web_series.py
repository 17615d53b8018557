"""The console's figures (m2bridge/web/series.py): rates, resets, per-slot lines, histogram
percentiles, Mongrel2 gauges, health, and the bounded history."""

from __future__ import annotations

import pytest

from m2bridge.web.series import (
    DEFAULT_POINTS,
    History,
    Snapshot,
    derive,
    health,
    mongrel2_point,
    quantile,
    watcher_point,
)

BUCKETS = [0.001, 0.01, 0.1, 1.0]


def process(pid=100, wid=1, **counters):
    row = {"pid": pid, "wid": wid, "state": "ready", "cpu": 1.5, "rss": 1000, "fds": 9}
    row.update(served=0, in_flight=0, errors=0, rejected=0, timed_out=0)
    row.update(counters)
    return row


def watcher(processes, name="hello", **extra):
    return {"name": name, "processes": processes, **extra}


def snapshot(watchers, clock=0.0, **stats):
    return Snapshot(wall=1000.0 + clock, clock=clock, stats={"watchers": watchers, **stats})


def latency(app, queue=None, buckets=BUCKETS):
    return {
        "buckets": buckets,
        "app_time": {"counts": app, "sum": 0.0},
        "queue_time": {"counts": queue if queue is not None else app, "sum": 0.0},
    }


# -- rates --


def test_first_snapshot_has_gauges_but_no_rates():
    point = derive(None, snapshot([watcher([process(served=5, in_flight=2)])]))
    hello = point["watchers"]["hello"]
    assert point["dt"] is None
    assert point["t"] == 1000.0
    assert hello["rps"] is None
    assert hello["errors"] is None
    assert hello["in_flight"] == 2
    assert hello["cpu"] == 1.5
    assert hello["app_time"] == {"p50": None, "p90": None, "p99": None}


def test_rates_come_from_the_totals_when_both_snapshots_have_them():
    totals_before = {"served": 100, "errors": 1, "rejected": 0, "timed_out": 4, "in_flight": 0}
    totals_after = {"served": 300, "errors": 3, "rejected": 10, "timed_out": 4, "in_flight": 1}
    # the processes disagree on purpose: the lifetime totals win
    before = snapshot([watcher([process(served=7)], totals=totals_before)], clock=10.0)
    after = snapshot([watcher([process(served=0)], totals=totals_after)], clock=12.0)
    hello = derive(before, after)["watchers"]["hello"]
    assert derive(before, after)["dt"] == 2.0
    assert (hello["rps"], hello["errors"], hello["rejected"], hello["timed_out"]) == (
        100.0,
        1.0,
        5.0,
        0.0,
    )


def test_a_smaller_total_is_a_reset_and_counts_as_zero():
    before = snapshot([watcher([], totals={"served": 500})], clock=0.0)
    after = snapshot([watcher([], totals={"served": 20})], clock=1.0)
    assert derive(before, after)["watchers"]["hello"]["rps"] == 0.0


def test_a_total_missing_in_one_snapshot_gives_no_rate():
    before = snapshot([watcher([], totals={"served": 5, "errors": 1})], clock=0.0)
    after = snapshot([watcher([], totals={"served": None})], clock=1.0)
    hello = derive(before, after)["watchers"]["hello"]
    assert hello["rps"] is None  # the new value is unknown
    assert hello["errors"] is None  # absent now


def test_without_totals_rates_sum_the_processes_by_pid():
    before = snapshot([watcher([process(1, 1, served=100), process(2, 2, served=50)])], 0.0)
    after = snapshot(
        [
            watcher(
                [
                    process(1, 1, served=130),  # +30
                    process(3, 2, served=5),  # replaced slot 2: new pid, all of its count
                ]
            )
        ],
        2.0,
    )
    assert derive(before, after)["watchers"]["hello"]["rps"] == 17.5


def test_without_totals_a_process_counter_going_down_counts_as_zero():
    before = snapshot([watcher([process(1, served=100)])], 0.0)
    after = snapshot([watcher([process(1, served=10)])], 1.0)
    assert derive(before, after)["watchers"]["hello"]["rps"] == 0.0


def test_totals_in_one_snapshot_only_fall_back_to_the_processes():
    before = snapshot([watcher([process(1, served=10)])], 0.0)
    after = snapshot([watcher([process(1, served=15)], totals={"served": 999})], 1.0)
    assert derive(before, after)["watchers"]["hello"]["rps"] == 5.0


def test_processes_without_counters_give_no_rate_and_no_in_flight():
    mongrel2 = process(1, served=None, in_flight=None, errors=None)
    before = snapshot([watcher([mongrel2], name="mongrel2")], 0.0)
    after = snapshot([watcher([mongrel2], name="mongrel2")], 1.0)
    point = derive(before, after)["watchers"]["mongrel2"]
    assert point["rps"] is None
    assert point["errors"] is None
    assert point["in_flight"] is None
    assert point["cpu"] == 1.5


def test_a_watcher_that_was_not_there_before_has_no_rates():
    before = snapshot([], 0.0)
    after = snapshot([watcher([process(served=5)])], 1.0)
    assert derive(before, after)["watchers"]["hello"]["rps"] is None


def test_a_clock_that_did_not_advance_gives_no_rates():
    before = snapshot([watcher([process(served=1)], latency=latency([1, 0, 0, 0, 0]))], 5.0)
    after = snapshot([watcher([process(served=9)], latency=latency([5, 0, 0, 0, 0]))], 5.0)
    point = derive(before, after)
    assert point["dt"] is None
    assert point["watchers"]["hello"]["rps"] is None
    assert point["watchers"]["hello"]["app_time"]["p50"] is None


# -- per-process lines and gauges --


def test_cpu_and_rss_are_keyed_by_slot_so_a_replaced_process_continues_the_line():
    before = derive(None, snapshot([watcher([process(1, 1, cpu=2.0, rss=10)])]))
    after = derive(None, snapshot([watcher([process(99, 1, cpu=4.0, rss=20)])]))
    assert before["watchers"]["hello"]["cpu_by_wid"] == {"1": 2.0}
    assert after["watchers"]["hello"]["cpu_by_wid"] == {"1": 4.0}
    assert after["watchers"]["hello"]["rss_by_wid"] == {"1": 20}


def test_cpu_sum_skips_unknown_values_and_ignores_bools():
    processes = [process(1, 1, cpu=None), process(2, 2, cpu=True), process(3, 3, cpu=2.25)]
    point = watcher_point(None, watcher(processes), 1.0)
    assert point["cpu"] == 2.25
    assert point["cpu_by_wid"] == {"1": None, "2": None, "3": 2.25}
    assert watcher_point(None, watcher([process(cpu="x")]), 1.0)["cpu"] is None


def test_in_flight_is_the_sum_over_the_processes():
    processes = [process(1, 1, in_flight=2), process(2, 2, in_flight=3)]
    assert watcher_point(None, watcher(processes), 1.0)["in_flight"] == 5


def test_a_watcher_without_processes_has_empty_lines():
    point = watcher_point(None, {"name": "idle", "processes": None}, 1.0)
    assert point["cpu_by_wid"] == {}
    assert point["cpu"] is None


# -- latency percentiles --


def test_percentiles_come_from_the_bucket_deltas_of_the_interval():
    before = snapshot([watcher([], latency=latency([100, 0, 0, 0, 0]))], 0.0)
    # this interval: 10 requests, all in (0.01, 0.1]; the old 100 fast ones do not count
    after = snapshot([watcher([], latency=latency([100, 0, 10, 0, 0], [100, 10, 0, 0, 0]))], 1.0)
    hello = derive(before, after)["watchers"]["hello"]
    assert hello["app_time"] == {"p50": 0.055, "p90": 0.091, "p99": 0.0991}
    assert hello["queue_time"]["p50"] == pytest.approx(0.0055)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, latency([1, 0, 0, 0, 0])),  # no histogram before
        (latency([1, 0, 0, 0, 0]), None),  # none now
        (latency([1, 0, 0, 0, 0]), latency([1, 0, 0, 0, 0])),  # no request in the interval
        (latency([5, 0, 0, 0, 0]), latency([1, 0, 0, 0, 0])),  # reset
        (latency([1, 0, 0, 0, 0]), latency([2, 0, 0], buckets=[0.1, 1.0])),  # buckets changed
        (latency([1, 0, 0, 0], buckets=[]), latency([2, 0, 0, 0], buckets=[])),  # no buckets
        ({"buckets": "x"}, {"buckets": "x"}),  # malformed buckets
        (latency([1, 0, 0, 0, 0]), latency([2, 0, 0, 0])),  # a count missing
        (latency([1, 0, 0, 0]), latency([2, 0, 0, 0])),  # counts do not fit the buckets
        (latency("x"), latency([2, 0, 0, 0, 0])),  # counts before not a list
        (latency([1, 0, 0, 0, 0]), latency([2, 0, "a", 0, 0])),  # not a number
        ({"buckets": BUCKETS, "app_time": None}, latency([2, 0, 0, 0, 0])),  # no histogram
    ],
)
def test_percentiles_are_none_when_the_interval_has_no_usable_histogram(before, after):
    extra_before = {"latency": before} if before is not None else {}
    extra_after = {"latency": after} if after is not None else {}
    point = derive(
        snapshot([watcher([], **extra_before)], 0.0), snapshot([watcher([], **extra_after)], 1.0)
    )
    assert point["watchers"]["hello"]["app_time"] == {"p50": None, "p90": None, "p99": None}


def test_quantile_interpolates_inside_the_first_bucket_from_zero():
    assert quantile(0.5, [0.1, 1.0], [10, 0, 0]) == pytest.approx(0.05)


def test_quantile_skips_empty_buckets_and_uses_the_previous_bound_as_lower():
    assert quantile(0.5, [0.1, 1.0, 2.0], [0, 0, 4, 0]) == pytest.approx(1.5)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound():
    assert quantile(0.99, [0.1, 1.0], [1, 0, 99]) == 1.0


def test_quantile_of_zero_is_the_lower_bound_of_the_first_counted_bucket():
    assert quantile(0.0, [0.1, 1.0], [0, 3, 0]) == pytest.approx(0.1)


# -- Mongrel2 --


def test_mongrel2_servers_are_keyed_by_their_watcher():
    stats = {
        "mongrel2": [
            {
                "watcher": "m2",
                "endpoint": "ipc://x",
                "answering": True,
                "connections": 5,
                "tasks": 6,
            },
            {"watcher": "m3", "answering": False, "connections": None},
            "not a server",
            {"endpoint": "no watcher name"},
        ]
    }
    assert mongrel2_point(stats) == {
        "m2": {"connections": 5, "tasks": 6, "answering": True},
        "m3": {"connections": None, "tasks": None, "answering": False},
    }


def test_no_mongrel2_data_gives_no_servers():
    assert mongrel2_point({}) == {}
    assert mongrel2_point({"mongrel2": None}) == {}
    assert derive(None, snapshot([]))["mongrel2"] == {}


# -- health --


def test_health_as_the_supervisor_reports_it():
    assert health({"healthy": False, "problems": ["hello is failed"]}) == {
        "healthy": False,
        "problems": ["hello is failed"],
    }
    assert health({"healthy": True, "problems": None}) == {"healthy": True, "problems": []}


def test_health_is_derived_from_the_watchers_for_an_older_supervisor():
    def row(name, state, reason=""):
        return {
            "name": name,
            "state": state,
            "numprocesses": 1,
            "running": 1,
            "ready": 1,
            "stopping": 0,
            "reason": reason,
        }

    status = {
        "watchers": [row("a", "active"), row("b", "backoff", "exited 1"), row("c", "stopped")]
    }
    assert health(status) == {
        "healthy": False,
        "problems": ["b is backoff: exited 1", "c is stopped"],
    }
    assert health({"watchers": [row("a", "active")]}) == {"healthy": True, "problems": []}
    assert health({}) == {"healthy": True, "problems": []}


# -- history --


def test_history_keeps_the_last_points_and_derives_each_from_the_previous_snapshot():
    history = History(size=3)
    assert history.last() is None
    assert history.points() == []
    for second in range(5):
        history.add(snapshot([watcher([process(served=second * 10)])], float(second)))
    points = history.points()
    assert len(points) == 3
    assert [p["t"] for p in points] == [1002.0, 1003.0, 1004.0]
    assert all(p["watchers"]["hello"]["rps"] == 10.0 for p in points)
    assert history.last() == points[-1]
    assert history.latest is not None
    assert history.latest.clock == 4.0


def test_history_defaults_to_ten_minutes_at_one_second():
    assert DEFAULT_POINTS == 600
    history = History()
    for second in range(DEFAULT_POINTS + 5):
        history.add(snapshot([], float(second)))
    assert len(history.points()) == DEFAULT_POINTS
