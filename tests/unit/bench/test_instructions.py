"""The callgrind figure of a run (bench/instructions.py, bench/runner.measure_instructions),
with ``bench.worker_cost.measure`` replaced: no valgrind and no worker run here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import instructions, runner
from bench.cycles import quick_config


class FakeMeasure:
    """Stands in for ``worker_cost.measure``: records its calls, answers per in-flight bound."""

    def __init__(self, costs: dict[int, float]) -> None:
        self.costs = costs
        self.calls: list[tuple[int, int, dict[str, Any]]] = []

    def __call__(self, small: int, large: int, **kwargs: Any) -> float:
        self.calls.append((small, large, kwargs))
        if kwargs["inflight"] not in self.costs:
            raise AssertionError("the worker exited (1)")
        return self.costs[kwargs["inflight"]]


@pytest.fixture
def valgrind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions, "valgrind_version", lambda: "valgrind-3.19.0")


@pytest.mark.usefixtures("valgrind")
def test_the_figure_is_the_relay_workers_tnetstring_cost_per_in_flight_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeMeasure({1: 166449.26, 32: 113848.04})
    monkeypatch.setattr("bench.worker_cost.measure", fake)
    block = instructions.measure_worker((500, 2500), (1, 32))
    assert block["per_request"] == {"1": 166449.3, "32": 113848.0}
    assert block["requests"] == [500, 2500]
    assert (block["app"], block["protocol"], block["valgrind"]) == (
        "hello",
        "tnetstring",
        "valgrind-3.19.0",
    )
    assert [call[2] for call in fake.calls] == [
        {"direct": False, "inflight": n, "protocol": "tnetstring"} for n in (1, 32)
    ]
    assert {call[:2] for call in fake.calls} == {(500, 2500)}


@pytest.mark.usefixtures("valgrind")
def test_a_failed_worker_run_names_its_in_flight_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.worker_cost.measure", FakeMeasure({1: 1.0}))
    with pytest.raises(
        instructions.CallgrindError, match="in flight 32: AssertionError: the worker"
    ):
        instructions.measure_worker((500, 2500), (1, 32))


def test_without_valgrind_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMeasure({1: 1.0})
    monkeypatch.setattr("bench.worker_cost.measure", fake)
    monkeypatch.setattr("bench.instructions.shutil.which", lambda name: None)
    with pytest.raises(instructions.CallgrindError, match="apt-get install valgrind"):
        instructions.measure_worker((500, 2500), (1,))
    with pytest.raises(instructions.CallgrindError, match="0 < small < large"):
        instructions.measure_worker((2500, 500), (1,))
    assert fake.calls == []


def test_the_runner_records_a_callgrind_failure_and_keeps_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(requests: Any, inflight: Any) -> dict[str, Any]:
        raise instructions.CallgrindError("valgrind not found: apt-get install valgrind")

    monkeypatch.setattr(instructions, "measure_worker", broken)
    run = runner.Run(quick_config(), tmp_path)
    lines: list[str] = []
    assert runner.measure_instructions(run, lines.append) is None
    assert run.failures == [
        {
            "app": "hello",
            "stack": "m2-zmq",
            "error": "callgrind: valgrind not found: apt-get install valgrind",
        }
    ]
    assert lines == ["callgrind: the m2bridge worker's instructions per hello request"]
