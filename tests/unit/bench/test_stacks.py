"""How the m2bridge Mongrel2 stack (Mongrel2, relay, workers) is started: stack files and
starters (bench/supervised, bench/runner). Nothing is started here; files are only rendered."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench import m2stacks, runner, supervised
from bench.cycles import STACKS
from bench.m2stacks import Endpoints
from m2bridge.supervisor.stack import load_stack

ENDS = Endpoints("tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", "ident")


def stack_file(name: str, tmp_path: Path) -> dict[str, Any]:
    text = supervised.zmq_stack_text(name, "hello", 3, tmp_path / name, ENDS)
    return tomllib.loads(text)


def test_m2_zmq_puts_the_relay_between_mongrel2_and_the_workers(tmp_path: Path) -> None:
    data = stack_file("m2-zmq", tmp_path)
    assert list(data["watchers"]) == ["mongrel2", "relay", "app"]
    relay = data["watchers"]["relay"]["cmd"]
    app = data["watchers"]["app"]
    workers = app["cmd"]
    assert isinstance(relay, list)
    assert isinstance(workers, list)
    assert relay[relay.index("--send-spec") + 1] == ENDS.send_spec
    spec = relay[relay.index("--bind") + 1]
    assert spec == f"ipc://{tmp_path / 'm2-zmq.ipc'}"
    assert workers[workers.index("--relay") + 1] == spec
    assert workers[workers.index("--recv-spec") + 1] == ENDS.recv_spec
    assert "--send-spec" not in workers
    assert (app["numprocesses"], data["watchers"]["relay"]["numprocesses"]) == (3, 1)
    assert data["stack"]["rundir"] == str(tmp_path / "m2-zmq-run")


def test_the_m2_zmq_stack_file_passes_the_supervisors_topology_guard(tmp_path: Path) -> None:
    path = tmp_path / "m2-zmq.toml"
    (tmp_path / "m2-zmq").mkdir()
    (tmp_path / "m2-zmq" / "mongrel2.conf").write_text("servers = []\n")
    path.write_text(supervised.zmq_stack_text("m2-zmq", "hello", 3, tmp_path / "m2-zmq", ENDS))
    assert load_stack(path).watchers["app"].numprocesses == 3


@pytest.mark.parametrize(
    ("name", "direct", "expected"),
    [
        ("m2-zmq", False, supervised.start_zmq_supervised),
        ("m2-zmq", True, m2stacks.start_zmq_direct),
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
