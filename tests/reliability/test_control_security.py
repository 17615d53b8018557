"""Control plane security against a real ``m2bridge up``: a private runtime dir and socket, a
TCP endpoint that wants its token (compared with ``hmac.compare_digest``), arguments that
cannot inject a path, a command or a fork bomb, and children that only ever run the stack's
commands."""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest

from m2bridge.errors import ControlError
from m2bridge.supervisor import control
from m2bridge.supervisor.client import ControlClient
from m2bridge.supervisor.control import Errno
from m2bridge.supervisor.server import ControlServer
from m2bridge.supervisor.stack import ControlSpec
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import fake_watcher, running_stack

TOKEN = "correct horse battery staple"


def test_runtime_dir_is_0700_and_control_socket_0600(base: Path) -> None:
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        sock = Path(stack.endpoint.removeprefix("ipc://"))
        assert stat.S_IMODE(stack.rundir.stat().st_mode) == 0o700
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert sock.stat().st_uid == os.getuid()
        for entry in stack.rundir.iterdir():
            assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0, entry


def tcp_call(endpoint: str, token: str | None, command: str = "status") -> dict[str, Any]:
    with ControlClient(endpoint, timeout=3, token=token) as client:
        return client.call(command)


def test_tcp_control_refuses_a_missing_or_wrong_token(base: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    text = f'[control]\nendpoint = "{endpoint}"\ntoken = "{TOKEN}"\n' + fake_watcher()
    with running_stack(base, text, wait=False) as stack:
        stack.wait_until(lambda: answers(endpoint))
        for token in (None, "", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
            with pytest.raises(ControlError) as refused:
                tcp_call(endpoint, token, "quit")
            assert refused.value.errno == Errno.UNAUTHORIZED, token
        assert tcp_call(endpoint, TOKEN)["watchers"][0]["name"] == "w"  # still up: no quit ran
        assert "missing or wrong token" in stack.log()


def answers(endpoint: str) -> bool:
    try:
        tcp_call(endpoint, TOKEN)
    except ControlError:
        return False
    return True


def test_token_is_compared_with_compare_digest(tmp_path: Path, monkeypatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    spec = ControlSpec(f"ipc://{tmp_path}/ctl", TOKEN)
    server = ControlServer(spec, lambda command, args: {"ran": command})
    try:
        request = control.ControlRequest(1, "status", {}, "guess")
        reply = control.decode_response(server.respond(control.encode_request(request)))
    finally:
        server.close()
    assert not reply.ok
    assert reply.errno == Errno.UNAUTHORIZED
    assert compared == [(b"guess", TOKEN.encode())]


HOSTILE_ARGS: list[tuple[str, dict[str, Any]]] = [
    ("incr", {"name": "w; touch {marker}"}),
    ("incr", {"name": "../../../tmp"}),
    ("incr", {"name": "w", "n": "1; touch {marker}"}),
    ("incr", {"name": "w", "n": -1}),
    ("incr", {"name": "w", "n": 10**6}),
    ("incr", {"name": "w", "n": 2**70}),
    ("incr", {"name": "w", "n": True}),
    ("numprocesses", {"name": "w", "n": 5000}),
    ("signal", {"name": "w", "signal": "KILL; touch {marker}"}),
    ("signal", {"name": "w", "signal": "$(touch {marker})"}),
    ("signal", {"name": "w", "signal": "9" * 5000}),
    ("signal", {"name": "w", "signal": "999"}),
    ("reload", {"name": "$(touch {marker})"}),
    ("restart", {"name": ["w"]}),
    ("start", {"name": {"cmd": "touch {marker}"}}),
    ("`touch {marker}`", {}),
    ("../../bin/sh", {}),
]


def fill(value: Any, marker: Path) -> Any:
    return value.format(marker=marker) if isinstance(value, str) else value


def test_hostile_control_arguments_are_refused_and_run_nothing(base: Path) -> None:
    marker = base / "pwned"
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        before = set(stack.pids("w"))
        allowed = {tuple(psutil.Process(pid).cmdline()) for pid in before}
        for command, args in HOSTILE_ARGS:
            filled = {key: fill(value, marker) for key, value in args.items()}
            with pytest.raises(ControlError) as refused:
                stack.call(fill(command, marker), **filled)
            assert refused.value.errno in (
                Errno.BAD_ARGUMENTS,
                Errno.NO_SUCH_WATCHER,
                Errno.UNKNOWN_COMMAND,
            ), (command, args, refused.value)
        cli = stack.ctl("incr", "w", "1;touch " + str(marker))
        assert cli.returncode == 2, cli.stderr
        assert not marker.exists()
        assert set(stack.pids("w")) == before  # nothing restarted, nothing added
        assert stack.call("status", name="w")["watchers"][0]["numprocesses"] == 2
        stack.call("reload", name="w")
        stack.wait_until(lambda: not before & set(stack.pids("w")) and len(stack.pids("w")) == 2)
        children = _running_cmdlines(stack.descendants())
        assert {cmd[:-1] for cmd in children} == {cmd[:-1] for cmd in allowed}  # argv ends slot=N


def _running_cmdlines(pids: list[int]) -> set[tuple[str, ...]]:
    """The argv of each process still running: an old worker the reload just stopped may be a
    zombie the supervisor has not reaped yet, or still exiting (its argv already gone, an
    empty one): either runs nothing."""
    cmdlines = set()
    for pid in pids:
        try:
            cmdline = tuple(psutil.Process(pid).cmdline())
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
        if cmdline:
            cmdlines.add(cmdline)
    return cmdlines
