"""The issue's targets evaluated on synthetic runs (bench/targets.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.targets import (
    Outcome,
    evaluate,
    instruction_targets,
    littles_law,
    reported,
    resource_targets,
)
from tests.helpers.bench_records import idle_sample, make_record, proc

HELLO_RPS = {
    "m2-zmq": 30000.0,
    "uwsgi": 25000.0,
    "uwsgi-keepalive": 27000.0,
    "granian": 60000.0,
    "gunicorn-gevent": 10000.0,
    "gunicorn-sync": 5000.0,
    "m2-canned": 40000.0,
    "fd": 12000.0,
}


def hello_run(c: int = 50, rounds: int = 3) -> list[dict[str, Any]]:
    return [
        make_record("hello", stack, r, c, rps, p99=4.0 if stack == "m2-zmq" else 8.0)
        for r in range(rounds)
        for stack, rps in HELLO_RPS.items()
    ]


def by_name(outcomes: list[Outcome], fragment: str) -> Outcome:
    found = [o for o in outcomes if fragment in o.name]
    assert len(found) == 1, [o.name for o in outcomes]
    return found[0]


def test_issue_15_hello_targets_are_ratios_to_uwsgi_keepalive_the_ceiling_and_gevent() -> None:
    outcomes = evaluate(hello_run(), [])
    keepalive = by_name(outcomes, "m2-zmq / uwsgi-keepalive req/s")
    assert keepalive.value == pytest.approx(30 / 27)
    assert (keepalive.bound, keepalive.ok) == (1.0, True)
    canned = by_name(outcomes, "m2-zmq / m2-canned req/s")
    assert canned.value == pytest.approx(0.75)
    assert (canned.bound, canned.ok) == (0.75, True)
    gevent = by_name(outcomes, "hello c=50: m2-zmq / gunicorn-gevent req/s")
    assert gevent.value == pytest.approx(3.0)
    assert (gevent.bound, gevent.ok) == (2.0, True)
    p99 = by_name(outcomes, "m2-zmq / uwsgi-keepalive p99")
    assert p99.value == pytest.approx(0.5)
    assert (p99.op, p99.ok) == ("<=", True)
    assert {keepalive.issue, canned.issue, gevent.issue, p99.issue} == {15}


def test_issue_6_targets_that_issue_15_does_not_restate_stay_and_say_so() -> None:
    outcomes = evaluate(hello_run(), [])
    sync = by_name(outcomes, "m2-zmq / gunicorn-sync req/s")
    assert sync.value == pytest.approx(6.0)
    assert (sync.bound, sync.issue) == (3.0, 6)
    fd = by_name(outcomes, "hello c=50: fd / gunicorn-gevent")
    assert fd.value == pytest.approx(1.2)
    assert fd.issue == 6
    assert [o.issue for o in outcomes] == sorted((o.issue for o in outcomes), reverse=True)
    assert not any(o.name.endswith("/ uwsgi req/s") for o in outcomes)


def test_granian_and_uwsgi_with_close_are_reported_without_a_bound() -> None:
    figures = {f.name: f.value for f in reported(hello_run())}
    assert figures == {
        "hello c=50: m2-zmq / granian req/s": pytest.approx(0.5),
        "hello c=50: m2-zmq / granian p99 latency": pytest.approx(0.5),
        "hello c=50: m2-zmq / uwsgi req/s": pytest.approx(1.2),
        "hello c=50: m2-zmq / uwsgi p99 latency": pytest.approx(0.5),
    }
    assert all(f.value is None for f in reported([]))


def test_a_missed_bound_is_reported_as_not_met() -> None:
    records = hello_run()
    for r in records:
        if r["stack"] == "m2-zmq":
            r["rps"] = 18000.0
    outcome = by_name(evaluate(records, []), "hello c=50: m2-zmq / gunicorn-gevent req/s")
    assert outcome.value == pytest.approx(1.8)
    assert outcome.ok is False


def test_targets_without_data_are_not_measured_rather_than_failed() -> None:
    outcomes = evaluate([], [])
    assert all(o.ok is None and o.value is None for o in outcomes)
    assert len(outcomes) == 16


def test_nearest_concurrency_is_used_and_said_when_the_named_one_did_not_run() -> None:
    outcome = by_name(evaluate(hello_run(c=10), []), "m2-zmq / uwsgi-keepalive req/s")
    assert outcome.value == pytest.approx(30 / 27)
    assert outcome.detail == "measured at c=10"


def test_worker_instructions_are_held_to_120k_in_flight_1_and_60k_in_flight_32() -> None:
    block = {"per_request": {"1": 118_000.0, "32": 75_000.0}}
    one, many = instruction_targets(block)
    assert (one.value, one.bound, one.ok) == (118_000.0, 120_000.0, True)
    assert (many.value, many.bound, many.ok) == (75_000.0, 60_000.0, False)
    assert "in flight 1" in one.name
    assert "in flight 32" in many.name
    assert one.detail == "callgrind; a wait per request"
    assert many.detail == "callgrind; requests wait queued"
    first_two = evaluate([], [], block)[:2]
    assert [o.value for o in first_two] == [118_000.0, 75_000.0]


def test_a_run_without_the_callgrind_figure_leaves_its_targets_not_measured() -> None:
    blocks: list[dict[str, Any] | None] = [None, {"per_request": {}}, {"per_request": {"1": 9e4}}]
    for block in blocks:
        outcomes = instruction_targets(block)
        assert outcomes[1].ok is None
        assert outcomes[1].value is None


def test_littles_law_limit_follows_the_concurrency() -> None:
    records = [
        make_record("io", "m2-zmq", r, 200, rps) for r, rps in enumerate((9000, 12000, 11000))
    ]
    outcome = littles_law(records)
    assert outcome.value == pytest.approx(11000 / 20000)
    assert outcome.ok is True
    assert "limit 20000" in outcome.detail
    quick = littles_law([make_record("io", "m2-zmq", 0, 50, 2000.0)])
    assert quick.value == pytest.approx(0.4)
    assert quick.ok is False
    assert "measured at c=50" in quick.detail


def test_worker_rss_uses_the_largest_worker_after_the_hello_run() -> None:
    idle = [
        idle_sample(
            "hello",
            "m2-zmq",
            [proc("worker", 0.1, 31.0), proc("worker", 0.1, 42.0), proc("mongrel2", 0.0, 90.0)],
        ),
        idle_sample("hello", "fd", [proc("worker", 0.0, 30.0), proc("supervisor", 0.0, 50.0)]),
        idle_sample("io", "m2-zmq", [proc("worker", 0.0, 10.0)]),
    ]
    rss_zmq, rss_fd, supervisor = resource_targets(idle)
    assert rss_zmq.value == 42.0
    assert rss_zmq.ok is False
    assert rss_fd.value == 30.0
    assert rss_fd.ok is True
    assert supervisor.ok is None
    assert "no supervisor" in supervisor.detail


def test_supervisor_idle_cpu_bound_is_two_percent() -> None:
    busy = [idle_sample("hello", "m2-zmq", [proc("supervisor", 2.5, 30.0)])]
    calm = [idle_sample("hello", "m2-zmq", [proc("supervisor", 0.4, 30.0)])]
    assert resource_targets(busy)[2].ok is False
    assert resource_targets(calm)[2].ok is True


def test_a_peer_that_left_most_connections_unanswered_is_named_in_the_targets_detail() -> None:
    records = hello_run()
    for r in records:
        # req/s x mean latency: m2-zmq answers all 50 connections, uWSGI keep-alive about 2
        r["latency_ms"]["mean"] = 50 / r["rps"] * 1000
        if r["stack"] == "uwsgi-keepalive":
            r["latency_ms"]["mean"] = 2 / r["rps"] * 1000
    outcomes = evaluate(records, [])
    keepalive = by_name(outcomes, "m2-zmq / uwsgi-keepalive req/s")
    assert keepalive.detail == "uwsgi-keepalive answered ~2 of 50 connections at once"
    assert by_name(outcomes, "m2-zmq / uwsgi-keepalive p99").detail == keepalive.detail
    assert by_name(outcomes, "m2-zmq / m2-canned req/s").detail == ""
    quick = by_name(evaluate(hello_run(c=10), []), "m2-zmq / uwsgi-keepalive req/s")
    assert quick.detail == "measured at c=10"  # no mean latency in these records: no note
