"""Comparing two results (bench/diff.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.diff import diff_results, format_diff, instruction_notes, topology_notes
from tests.helpers.bench_records import make_record


def result(zmq_rps: float, base_rps: float, p99: float = 5.0) -> dict[str, Any]:
    return {
        "records": [
            make_record("hello", "m2-zmq", 0, 50, zmq_rps, p99=p99),
            make_record("hello", "gunicorn-gevent", 0, 50, base_rps),
            make_record("io", "uwsgi", 0, 10, 100.0),
        ]
    }


def test_diff_reports_absolute_and_paired_ratio_changes() -> None:
    rows = diff_results(result(10000, 5000), result(12000, 4000, p99=4.0))
    zmq = next(r for r in rows if r["stack"] == "m2-zmq")
    assert zmq["rps_change_pct"] == pytest.approx(20.0)
    assert zmq["old_ratio"] == pytest.approx(2.0)
    assert zmq["new_ratio"] == pytest.approx(3.0)
    assert zmq["ratio_change_pct"] == pytest.approx(50.0)
    assert zmq["old_p99"] == 5.0
    assert zmq["new_p99"] == 4.0


def test_cells_missing_from_either_side_are_left_out() -> None:
    old = result(1, 1)
    new = {"records": [r for r in result(2, 2)["records"] if r["app"] == "hello"]}
    assert {r["app"] for r in diff_results(old, new)} == {"hello"}


def test_a_stack_without_a_baseline_gets_no_ratio_but_still_a_row() -> None:
    rows = diff_results(result(1, 1), result(1, 1))
    uwsgi = next(r for r in rows if r["stack"] == "uwsgi")
    assert uwsgi["old_ratio"] is None
    assert uwsgi["ratio_change_pct"] is None
    text = format_diff(rows, "old.json", "new")
    assert "| io | uwsgi | 10 | 100 | 100 | +0.0% |" in text
    assert "| - | - | -% |" in text


def test_format_of_no_common_cell_says_so() -> None:
    assert "no cell in common" in format_diff([], "a", "b")


def with_config(data: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {**data, "config": {"stacks": ["m2-zmq", "gunicorn-gevent"], **config}}


def test_a_direct_baseline_against_a_relay_run_gets_a_note_naming_m2_relay() -> None:
    old = with_config(result(1, 1))
    new = with_config(result(1, 1), relay=True)
    notes = topology_notes(old, new)
    assert len(notes) == 1
    assert "baseline's m2-zmq ran without `m2bridge relay`" in notes[0]
    assert "no longer a supported topology" in notes[0]
    assert "the topology the baseline measured as m2-relay" in notes[0]
    text = format_diff(diff_results(old, new), "old.json", "new", notes)
    assert notes[0] in text
    assert text.index(notes[0]) < text.index("| app | stack |")


@pytest.mark.parametrize(
    ("old_config", "old_stacks"),
    [({"relay": False}, ("m2-zmq",)), ({}, ("m2-zmq",)), ({"relay": True}, ("uwsgi",))],
)
def test_no_note_when_the_baseline_m2_zmq_had_no_relay_or_did_not_run(
    old_config: dict[str, Any], old_stacks: tuple[str, ...]
) -> None:
    old = result(1, 1)
    old["records"] = [r for r in old["records"] if r["stack"] in old_stacks]
    assert topology_notes(with_config(old, **old_config), with_config(result(1, 1))) == []


def test_no_note_when_both_runs_had_the_relay_in_m2_zmq() -> None:
    old = with_config(result(1, 1), relay=True)
    assert topology_notes(old, old) == []


def test_a_relay_baseline_against_a_direct_run_says_so_too() -> None:
    old, new = with_config(result(1, 1), relay=True), with_config(result(1, 1))
    [note] = topology_notes(old, new)
    assert "baseline's m2-zmq ran with `m2bridge relay`" in note


def test_instruction_notes_compare_the_in_flight_bounds_both_runs_measured() -> None:
    old = {"worker_instructions": {"per_request": {"1": 200000.0, "32": 100000.0}}}
    new = {"worker_instructions": {"per_request": {"32": 60000.0, "4": 1.0}}}
    assert instruction_notes(old, new) == [
        "Worker instructions per hello request (callgrind): "
        "in flight 32 100,000 -> 60,000 (-40.0%)."
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, {"worker_instructions": {"per_request": {"1": 1.0}}}),
        ({"worker_instructions": None}, {"worker_instructions": {"per_request": {"1": 1.0}}}),
        ({"worker_instructions": {"per_request": {"1": 1.0}}}, {}),
    ],
)
def test_no_instruction_note_when_either_run_lacks_the_figure(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert instruction_notes(old, new) == []
