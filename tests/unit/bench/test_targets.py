"""The issue's targets evaluated on synthetic runs (bench/targets.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.targets import Outcome, evaluate, littles_law, resource_targets
from tests.helpers.bench_records import idle_sample, make_record, proc

HELLO_RPS = {
    "m2-zmq": 30000.0,
    "uwsgi": 25000.0,
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


def test_hello_ratios_are_met_or_missed_against_their_bounds() -> None:
    outcomes = evaluate(hello_run(), [])
    uwsgi = by_name(outcomes, "m2-zmq / uwsgi req/s")
    assert uwsgi.value == pytest.approx(1.2)
    assert uwsgi.ok is True
    sync = by_name(outcomes, "m2-zmq / gunicorn-sync req/s")
    assert sync.value == pytest.approx(6.0)
    assert by_name(outcomes, "hello c=50: m2-zmq / gunicorn-gevent req/s").ok is True
    assert by_name(outcomes, "m2-zmq / m2-canned").value == pytest.approx(0.75)
    assert by_name(outcomes, "m2-zmq / uwsgi p99").value == pytest.approx(0.5)
    assert by_name(outcomes, "m2-zmq / uwsgi p99").ok is True
    fd = by_name(outcomes, "hello c=50: fd / gunicorn-gevent")
    assert fd.value == pytest.approx(1.2)


def test_a_missed_bound_is_reported_as_not_met() -> None:
    records = hello_run()
    for r in records:
        if r["stack"] == "m2-zmq":
            r["rps"] = 12000.0
    outcome = by_name(evaluate(records, []), "hello c=50: m2-zmq / gunicorn-gevent req/s")
    assert outcome.value == pytest.approx(1.2)
    assert outcome.ok is False


def test_targets_without_data_are_not_measured_rather_than_failed() -> None:
    outcomes = evaluate([], [])
    assert all(o.ok is None and o.value is None for o in outcomes)
    assert len(outcomes) == 14


def test_nearest_concurrency_is_used_and_said_when_the_named_one_did_not_run() -> None:
    outcome = by_name(evaluate(hello_run(c=10), []), "m2-zmq / uwsgi req/s")
    assert outcome.value == pytest.approx(1.2)
    assert outcome.detail == "measured at c=10"


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
