"""Comparing two results (bench/diff.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.diff import diff_results, format_diff
from tests.unit.bench_records import make_record


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
