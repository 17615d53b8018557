"""How the two Mongrel2 topologies are started: stack files and starters (bench/supervised,
bench/runner). Nothing is started here; the stack files are only rendered."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench import m2stacks, runner, supervised
from bench.cycles import STACKS
from bench.m2stacks import Endpoints

ENDS = Endpoints("tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", "ident")


def stack_file(name: str, relay: bool, tmp_path: Path) -> dict[str, Any]:
    text = supervised.zmq_stack_text(name, "hello", 3, tmp_path / name, ENDS, relay)
    return tomllib.loads(text)


def test_m2_zmq_workers_pull_from_mongrel2_without_a_relay(tmp_path: Path) -> None:
    data = stack_file("m2-zmq", False, tmp_path)
    assert set(data["watchers"]) == {"mongrel2", "app"}
    app = data["watchers"]["app"]
    argv = app["cmd"]
    assert isinstance(argv, list)
    assert argv[argv.index("--send-spec") + 1] == ENDS.send_spec
    assert argv[argv.index("--recv-spec") + 1] == ENDS.recv_spec
    assert "--relay" not in argv
    assert app["numprocesses"] == 3
    assert data["stack"]["rundir"] == str(tmp_path / "m2-zmq-run")


def test_m2_relay_puts_the_relay_between_mongrel2_and_the_workers(tmp_path: Path) -> None:
    data = stack_file("m2-relay", True, tmp_path)
    assert set(data["watchers"]) == {"mongrel2", "relay", "app"}
    relay = data["watchers"]["relay"]["cmd"]
    workers = data["watchers"]["app"]["cmd"]
    assert isinstance(relay, list)
    assert isinstance(workers, list)
    assert relay[relay.index("--send-spec") + 1] == ENDS.send_spec
    spec = relay[relay.index("--bind") + 1]
    assert spec == f"ipc://{tmp_path / 'm2-relay.ipc'}"
    assert workers[workers.index("--relay") + 1] == spec
    assert "--send-spec" not in workers
    assert data["stack"]["rundir"] == str(tmp_path / "m2-relay-run")


@pytest.mark.parametrize(
    ("name", "direct", "expected"),
    [
        ("m2-zmq", False, supervised.start_zmq_supervised),
        ("m2-relay", False, supervised.start_relay_supervised),
        ("m2-zmq", True, m2stacks.start_zmq_direct),
        ("m2-relay", True, m2stacks.start_relay_direct),
        ("fd", True, m2stacks.start_fd_direct),
        ("uwsgi", True, runner.STARTERS["uwsgi"]),
    ],
)
def test_starter_picks_supervised_or_direct_per_stack(
    name: str, direct: bool, expected: runner.Starter
) -> None:
    assert runner.starter(name, direct) is expected


def test_every_stack_of_the_plan_has_a_starter() -> None:
    assert set(runner.STARTERS) == set(STACKS)
