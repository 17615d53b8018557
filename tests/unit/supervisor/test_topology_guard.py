"""The one multi-worker topology (docs/decisions/0001-multi-worker-topology.md): several
``m2bridge serve`` workers straight on Mongrel2 are refused at load and on ``incr``; the relay
is what ``serve --workers N`` runs, one process, started before its workers."""

from __future__ import annotations

import io
import re
import sys
import textwrap
from types import SimpleNamespace

import pytest

from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor import commands
from m2bridge.supervisor.control import Errno
from m2bridge.supervisor.stack import (
    RELAY_PRIORITY,
    WatcherSpec,
    load_stack,
    relay_endpoint,
    worker_stack,
)
from m2bridge.supervisor.topology import (
    TOPOLOGY_DECISION,
    runs_the_relay,
    serves_straight_from_mongrel2,
)
from m2bridge.supervisor.view import ArbiterView
from m2bridge.supervisor.watcher import Watcher

DIRECT = "$(python) -m m2bridge serve handlers.hello:app --config m2.conf --handler /"


@pytest.mark.parametrize(
    "cmd",
    [
        ["$(python)", "-m", "m2bridge", "serve", "a:b"],
        ["/venv/bin/m2bridge", "serve", "a:b", "--send-spec", "tcp://127.0.0.1:1"],
        ["m2bridge", "serve", "a:b", "--config", "m.conf", "--handler", "/"],
    ],
)
def test_a_zeromq_serve_without_relay_is_detected_as_straight_from_mongrel2(cmd):
    assert serves_straight_from_mongrel2(tuple(cmd))


@pytest.mark.parametrize(
    "cmd",
    [
        ["m2bridge", "serve", "a:b", "--relay", "ipc:///tmp/r.ipc"],
        ["m2bridge", "serve", "a:b", "--relay=ipc:///tmp/r.ipc"],
        ["m2bridge", "serve", "a:b", "--fd", "$(sockets.web)"],
        ["m2bridge", "serve", "a:b", "--bind", "127.0.0.1:8000"],
        ["m2bridge", "serve", "a:b", "--bind=127.0.0.1:8000"],
        ["m2bridge", "relay", "--send-spec", "tcp://127.0.0.1:1", "--bind", "ipc:///r"],
        ["$(python)", "-c", "print('m2bridge serve')"],
        ["gunicorn", "serve"],
    ],
)
def test_relay_fd_bind_and_other_commands_are_not_straight_from_mongrel2(cmd):
    assert not serves_straight_from_mongrel2(tuple(cmd))


def test_the_relay_command_is_recognised_in_both_spellings():
    assert runs_the_relay(("$(python)", "-m", "m2bridge", "relay", "--bind", "ipc:///r"))
    assert runs_the_relay(("/usr/bin/m2bridge", "relay"))
    assert not runs_the_relay(("m2bridge", "serve", "a:b", "--relay", "ipc:///r"))


def load(tmp_path, text: str):
    path = tmp_path / "stack.toml"
    path.write_text(textwrap.dedent(text))
    return load_stack(path)


def test_a_stack_of_two_direct_serve_workers_is_refused_naming_the_watcher_and_decision(
    tmp_path,
):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'[watchers.hello]\ncmd = "{DIRECT}"\nnumprocesses = 2\n')
    message = str(info.value)
    assert "watchers.hello.numprocesses" in message
    assert "m2bridge relay" in message
    assert "pipelined" in message
    assert TOPOLOGY_DECISION in message


def test_one_direct_worker_and_several_relayed_or_fd_workers_load(tmp_path):
    stack = load(
        tmp_path,
        f"""
        [watchers.one]
        cmd = "{DIRECT}"
        [watchers.relayed]
        cmd = "{DIRECT} --relay ipc:///tmp/x.ipc"
        numprocesses = 4
        [watchers.fd]
        cmd = "$(python) -m m2bridge serve a:b --bind 127.0.0.1:8000"
        numprocesses = 3
        """,
    )
    counts = {name: spec.numprocesses for name, spec in stack.watchers.items()}
    assert counts == {"one": 1, "relayed": 4, "fd": 3}


def test_a_relay_watcher_of_two_processes_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"watchers\.relay\.numprocesses: .*one process"):
        load(
            tmp_path,
            '[watchers.relay]\ncmd = "m2bridge relay --send-spec tcp://127.0.0.1:1 '
            '--bind ipc:///r"\nnumprocesses = 2\n',
        )


def test_worker_stack_runs_the_relay_first_and_one_process_of_it():
    relay = [sys.executable, "-m", "m2bridge", "relay", "--bind", relay_endpoint("app")]
    workers = [sys.executable, "-m", "m2bridge", "serve", "a:b", "--relay", relay_endpoint("app")]
    stack = worker_stack(workers, 2, 5.0, "app", relay)
    assert list(stack.watchers) == ["relay", "app"]
    spec = stack.watchers["relay"]
    assert (spec.cmd, spec.numprocesses, spec.priority) == (tuple(relay), 1, RELAY_PRIORITY)
    assert stack.watchers["app"].priority < RELAY_PRIORITY  # it stops after its workers
    assert relay_endpoint("app") == f"ipc://{stack.rundir}/relay.ipc"


def test_worker_stack_refuses_several_workers_straight_on_mongrel2():
    with pytest.raises(ConfigError, match="pipelined"):
        worker_stack([sys.executable, "-m", "m2bridge", "serve", "a:b"], 2, 5.0, "app")


# -- incr / numprocesses / TTIN on the running supervisor --


def view_of(**cmds: str) -> ArbiterView:
    """An ArbiterView over watchers running ``cmds`` (one process each, nothing spawned)."""
    launcher = SimpleNamespace(rolling=True)
    watchers = {
        name: Watcher(WatcherSpec(name=name, cmd=tuple(cmd.split())), launcher, io.BytesIO())
        for name, cmd in cmds.items()
    }
    return ArbiterView(SimpleNamespace(watchers=watchers, quitting=False))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "args"), [("incr", {"name": "hello"}), ("numprocesses", {"name": "hello", "n": 3})]
)
def test_incr_past_one_direct_worker_is_refused_and_changes_nothing(command, args):
    view = view_of(hello="python -m m2bridge serve a:b --send-spec tcp://127.0.0.1:1")
    with pytest.raises(ControlError) as info:
        commands.run(view, command, args)
    assert info.value.errno == Errno.BAD_ARGUMENTS
    assert re.match(r"hello: [23] 'm2bridge serve' processes connected straight", str(info.value))
    assert "m2bridge relay" in str(info.value)
    assert view.numprocesses("hello") == 1


def test_incr_of_relayed_workers_is_allowed_and_of_the_relay_refused():
    view = view_of(
        hello="python -m m2bridge serve a:b --relay ipc:///r",
        relay="python -m m2bridge relay --send-spec tcp://127.0.0.1:1 --bind ipc:///r",
    )
    assert commands.run(view, "incr", {"name": "hello", "n": 3})["numprocesses"] == 4
    with pytest.raises(ControlError, match="one process"):
        commands.run(view, "incr", {"name": "relay"})


def test_ttin_and_hup_leave_the_relay_alone():
    view = view_of(
        hello="python -m m2bridge serve a:b --relay ipc:///r",
        relay="python -m m2bridge relay --bind ipc:///r",
    )
    assert view.scalable() == ["hello"]
