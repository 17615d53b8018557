"""Cycle plan, medians and paired ratios (bench/cycles.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.cycles import (
    APPS,
    STACKS,
    BenchConfig,
    cpu_per_request_us,
    estimate_seconds,
    median,
    others_cpu,
    paired_ratio,
    plan_steps,
    quick_config,
    ratios,
    role_totals,
    rotated,
    served_connections,
    served_in_cell,
    stacks_for,
    summarize,
)
from tests.helpers.bench_records import make_record, proc


def test_rotation_moves_each_stack_one_place_per_round() -> None:
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert rotated([], 3) == []


def test_ceiling_stacks_run_only_for_the_apps_they_bound() -> None:
    every = ("m2-zmq", "gunicorn-sync", "m2-static", "m2-canned")
    assert stacks_for("hello", every) == list(every)
    assert stacks_for("io", every) == ["m2-zmq", "gunicorn-sync"]
    assert stacks_for("post", every) == ["m2-zmq", "gunicorn-sync", "m2-canned"]


def test_plan_interleaves_stacks_inside_each_cycle_round_after_round() -> None:
    config = BenchConfig(stacks=("a", "b"), concurrencies=(1, 10), rounds=2)
    steps = [(s.round, s.concurrency, s.stack) for s in plan_steps(config, "hello")]
    assert steps == [
        (0, 1, "a"), (0, 1, "b"), (0, 10, "a"), (0, 10, "b"),
        (1, 1, "b"), (1, 1, "a"), (1, 10, "b"), (1, 10, "a"),
    ]  # fmt: skip


def test_m2_zmq_is_the_one_m2bridge_mongrel2_stack_and_serves_every_app() -> None:
    assert STACKS[0] == "m2-zmq"
    assert "m2-relay" not in STACKS
    for app in APPS:
        assert stacks_for(app, STACKS)[0] == "m2-zmq"


def test_config_records_that_m2_zmq_runs_the_relay() -> None:
    config = BenchConfig().to_dict()
    assert config["relay"] is True
    assert config["stacks"][0] == "m2-zmq"


def test_quick_config_estimate_stays_under_two_and_a_half_minutes_with_every_stack() -> None:
    assert estimate_seconds(quick_config()) < 150
    assert estimate_seconds(BenchConfig()) > estimate_seconds(quick_config())


def test_callgrind_is_on_for_full_runs_off_for_quick_ones_and_counted_in_the_estimate() -> None:
    full, quick = BenchConfig(), quick_config()
    assert (full.callgrind, quick.callgrind) == (True, False)
    assert full.to_dict()["callgrind_inflight"] == [1, 32]
    assert full.to_dict()["callgrind_requests"] == [500, 2500]
    with_callgrind = replace(quick, callgrind=True)
    # two in-flight bounds x two worker runs under callgrind: about a minute and a half
    assert 60 < estimate_seconds(with_callgrind) - estimate_seconds(quick) < 150


def test_warmup_once_skips_later_rounds_only() -> None:
    config = BenchConfig(stacks=("a",), concurrencies=(1,), rounds=3, warmup_every_round=False)
    assert [s.warmup for s in plan_steps(config, "hello")] == [True, False, False]
    config = BenchConfig(stacks=("a",), concurrencies=(1,), rounds=2)
    assert [s.warmup for s in plan_steps(config, "hello")] == [True, True]


def test_median_of_nothing_is_none() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0]) == 1.5


def test_role_totals_sum_cpu_and_keep_the_largest_process_rss() -> None:
    record = make_record(
        "hello",
        "s",
        0,
        1,
        10.0,
        procs=[proc("worker", 30, 20), proc("worker", 40, 25), proc("master", 1, 30)],
    )
    cpu, rss = role_totals(record)
    assert cpu == {"worker": 70.0, "master": 1.0}
    assert rss == {"worker": 25.0, "master": 30.0}


def test_others_cpu_is_what_the_machine_used_beyond_the_stack_and_wrk() -> None:
    record = make_record("hello", "s", 0, 1, 10.0, procs=[proc("worker", 50, 20), proc("m", 10, 5)])
    assert others_cpu(record) == 190.0 - 60.0 - 30.0
    record["machine_cpu_pct"] = 20.0
    assert others_cpu(record) == 0.0


def test_cpu_per_request_counts_every_process_or_one_role() -> None:
    record = make_record(
        "hello", "s", 0, 1, 1000.0, procs=[proc("worker", 50, 20), proc("m", 10, 5)]
    )
    assert cpu_per_request_us(record) == pytest.approx(1e6 * 0.6 / 1000)
    assert cpu_per_request_us(record, "worker") == pytest.approx(500.0)
    assert cpu_per_request_us(make_record("hello", "s", 0, 1, 1000.0)) is None
    record["requests"] = 0
    assert cpu_per_request_us(record) is None


def test_summary_takes_medians_over_rounds_and_sums_errors() -> None:
    rows = [make_record("hello", "s", r, 10, rps) for r, rps in enumerate((100.0, 300.0, 200.0))]
    rows[1]["errors"]["timeout"] = 2
    cell = summarize(rows)["hello"]["s"]["10"]
    assert cell["rps"] == 200.0
    assert cell["rps_all"] == [100.0, 300.0, 200.0]
    assert cell["errors"] == 2
    assert cell["rounds"] == 3
    assert cell["latency_ms"]["p99"] == 5.0


def test_ratio_is_paired_by_round_not_a_ratio_of_medians() -> None:
    # the machine was twice as fast in round 1: the pairs say 2.0 each time
    records = [
        make_record("hello", "x", 0, 10, 200.0),
        make_record("hello", "b", 0, 10, 100.0),
        make_record("hello", "x", 1, 10, 400.0),
        make_record("hello", "b", 1, 10, 200.0),
        make_record("hello", "x", 2, 10, 420.0),
        make_record("hello", "b", 2, 10, 210.0),
        make_record("hello", "b", 3, 10, 1000.0),  # no partner: ignored
    ]
    assert paired_ratio(records, "hello", "x", "b", 10) == pytest.approx(2.0)


def test_p99_ratio_and_missing_partner_give_none() -> None:
    records = [
        make_record("io", "x", 0, 10, 1.0, p99=10.0),
        make_record("io", "b", 0, 10, 1.0, p99=20.0),
    ]
    assert paired_ratio(records, "io", "x", "b", 10, key="p99") == pytest.approx(0.5)
    assert paired_ratio(records, "io", "x", "b", 50) is None
    assert paired_ratio(records, "io", "x", "nobody", 10) is None


def test_zero_baseline_throughput_is_skipped_not_divided() -> None:
    records = [make_record("io", "x", 0, 10, 5.0), make_record("io", "b", 0, 10, 0.0)]
    assert paired_ratio(records, "io", "x", "b", 10) is None


def test_ratios_cover_each_stack_against_each_present_baseline() -> None:
    records = [
        make_record("hello", "m2-zmq", 0, 10, 300.0),
        make_record("hello", "gunicorn-gevent", 0, 10, 100.0),
    ]
    table = ratios(records)
    assert table["hello"]["m2-zmq"]["10"]["gunicorn-gevent"]["rps"] == pytest.approx(3.0)
    assert "gunicorn-sync" not in table["hello"]["m2-zmq"]["10"]


def test_served_connections_is_req_s_times_mean_latency() -> None:
    every = make_record("hello", "m2-zmq", 0, 50, 10000.0)
    every["latency_ms"]["mean"] = 5.0  # 10k req/s x 5 ms: all 50 connections answered
    pinned = make_record("hello", "uwsgi-keepalive", 0, 50, 30000.0)
    pinned["latency_ms"]["mean"] = 0.07  # 2 connections ping-pong, 48 wait
    assert served_connections(every) == pytest.approx(50.0)
    assert served_connections(pinned) == pytest.approx(2.1)
    assert served_connections(make_record("hello", "x", 0, 50, 1.0)) is None  # no mean
    assert served_in_cell([every, pinned], "hello", "uwsgi-keepalive", 50) == pytest.approx(2.1)
    assert served_in_cell([every], "hello", "uwsgi-keepalive", 50) is None
