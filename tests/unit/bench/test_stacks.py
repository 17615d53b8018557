"""How the stacks are started: the m2bridge Mongrel2 stack's files (Mongrel2, relay, workers),
the peers' command lines (bench/stacks) and the starters (bench/supervised, bench/runner).
Nothing is started here; files and command lines are only rendered (and granian's parsed by
its own command-line parser)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench import m2stacks, runner, stacks, supervised
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
        ("uwsgi", True, stacks.start_uwsgi),
        ("uwsgi-keepalive", False, stacks.start_uwsgi_keepalive),
        ("granian", True, stacks.start_granian),
    ],
)
def test_starter_picks_supervised_or_direct_per_stack(
    name: str, direct: bool, expected: runner.Starter
) -> None:
    assert runner.starter(name, direct) is expected


def test_every_stack_of_the_plan_has_a_starter() -> None:
    assert set(runner.STARTERS) == set(STACKS)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_uwsgi_keepalive_serves_http11_with_the_same_processes_and_backlog_as_uwsgi() -> None:
    keepalive = stacks.uwsgi_argv("hello", 3, 8001, keepalive=True)
    close = stacks.uwsgi_argv("hello", 3, 8002, keepalive=False)
    assert option(keepalive, "--http11-socket") == "127.0.0.1:8001"
    assert "--http-socket" not in keepalive
    assert "Connection: close" not in keepalive
    for argv in (keepalive, close):
        assert option(argv, "--processes") == "3"
        assert option(argv, "--listen") == "1024"
        assert option(argv, "--module") == "handlers.hello:app"
        assert {"--master", "--disable-logging", "--die-on-term"} <= set(argv)


def test_uwsgi_without_keepalive_stays_one_request_per_connection_and_says_so() -> None:
    argv = stacks.uwsgi_argv("io", 2, 8003, keepalive=False)
    assert option(argv, "--http-socket") == "127.0.0.1:8003"
    assert option(argv, "--add-header") == "Connection: close"
    assert option(argv, "--module") == "handlers.sleepy:app"


def test_granian_serves_the_wsgi_module_over_http1_on_loopback_without_access_log() -> None:
    argv = stacks.granian_argv("big", 2, 8004)
    assert argv[:3] == [sys.executable, "-m", "granian"]
    assert argv[-1] == "bench.apps.big:app"
    cli = pytest.importorskip("granian.cli")  # the optional bench dependency
    params = cli.cli.make_context("granian", argv[3:]).params
    assert str(params["interface"].value) == "wsgi"
    assert str(params["http"].value) == "1"
    assert (params["host"], params["port"], params["workers"]) == ("127.0.0.1", 8004, 2)
    assert (params["websockets"], params["log_access_enabled"]) == (False, False)
    assert params["backlog"] == 1024
    assert params["app"] == "bench.apps.big:app"
