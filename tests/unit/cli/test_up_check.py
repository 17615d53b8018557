"""``m2bridge up --check``: each problem of a stack is one error line naming it; nothing starts.

No ``m2bridge serve`` watcher here: importing apps runs a subprocess
(tests/component/supervisor/test_up_check_apps.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from m2bridge.cli import main
from m2bridge.cli.up import check_stack
from tests.helpers.stack import write_stack

DEMO_CONF = Path(__file__).parents[3] / "mongrel2_conf" / "examples" / "demo.conf"

STACK = """
[watchers.mongrel2]
type = "mongrel2"
config = "demo.conf"
server = "{server}"

[watchers.other]
cmd = "$(python) -c pass"
{extra}
"""


def stack_with(tmp_path: Path, server: str = "demo", extra: str = "", conf: str = "") -> Path:
    conf_file = tmp_path / "demo.conf"
    shutil.copy(DEMO_CONF, conf_file)
    if conf:
        conf_file.write_text(conf)
    return write_stack(tmp_path, STACK.format(server=server, extra=extra))


def errors_of(stack_file: Path) -> list[str]:
    return [c.error for c in check_stack(str(stack_file)) if c.error is not None]


def test_good_stack_passes_every_check_and_leaves_no_rundir(tmp_path, capsys):
    stack_file = stack_with(tmp_path, extra='[metrics]\naddress = "127.0.0.1:0"')
    assert main(["up", "--check", str(stack_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(line.startswith("ok: ") for line in out[:-1]), out
    assert any("watchers.mongrel2.config" in line and "'demo'" in line for line in out)
    assert any("metrics.address 127.0.0.1:0" in line for line in out)
    assert "all 4 checks passed" in out[-1]
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.conf", "stack.toml"]


def test_broken_mongrel2_config_fails_naming_the_watcher_and_file(tmp_path, capsys):
    stack_file = stack_with(tmp_path, conf="servers = [oops(\n")
    assert main(["up", "--check", str(stack_file)]) == 1
    out = capsys.readouterr().out
    assert "error: watchers.mongrel2.config: " in out
    assert "demo.conf" in out
    assert not (tmp_path / "run").exists()


def test_daemonizing_config_fails(tmp_path):
    conf = DEMO_CONF.read_text().replace('"server.daemonize": 0', '"server.daemonize": 1')
    (error,) = errors_of(stack_with(tmp_path, conf=conf))
    assert error.startswith("watchers.mongrel2.config: ")
    assert "server.daemonize" in error


def test_unknown_server_name_fails_listing_the_servers(tmp_path):
    (error,) = errors_of(stack_with(tmp_path, server="nope"))
    assert "no server 'nope'" in error
    assert "demo (m2bridge-demo)" in error


def test_bad_key_fails_naming_it_and_stops(tmp_path, capsys):
    stack_file = stack_with(tmp_path, extra="numprocs = 2")
    assert main(["up", "--check", str(stack_file)]) == 1
    line, summary = capsys.readouterr().out.splitlines()
    assert line.startswith("error: ")
    assert "watchers.other.numprocs: unknown key" in line
    assert summary == "m2bridge up --check: 1 of 1 checks failed"


def test_unknown_substitution_fails_naming_the_key(tmp_path):
    stack_file = stack_with(tmp_path, extra='env = { X = "$(nope)" }')
    (error,) = errors_of(stack_file)
    assert "watchers.other.env: unknown substitution $(nope)" in error


def test_missing_program_fails(tmp_path):
    stack_file = write_stack(tmp_path, '[watchers.x]\ncmd = "no-such-program-m2b --flag"\n')
    assert errors_of(stack_file) == ["watchers.x.cmd: no such program 'no-such-program-m2b'"]


def test_missing_working_dir_fails(tmp_path):
    stack_file = write_stack(tmp_path, '[watchers.x]\ncmd = "true"\nworking_dir = "gone"\n')
    (error,) = errors_of(stack_file)
    assert error == f"watchers.x.working_dir: no such directory {tmp_path / 'gone'}"


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("nohost", "--metrics: expected HOST:PORT, got 'nohost'"),
        ("127.0.0.1:99999", "--metrics: expected HOST:PORT"),
    ],
)
def test_bad_metrics_address_fails(tmp_path, capsys, flag, expected):
    stack_file = write_stack(tmp_path, '[watchers.x]\ncmd = "true"\n')
    assert main(["up", "--check", str(stack_file), "--metrics", flag]) == 1
    assert expected in capsys.readouterr().out


def test_web_and_socket_addresses_are_checked(tmp_path):
    text = """
    [sockets.web]
    host = "127.0.0.1"
    port = 0

    [watchers.x]
    cmd = "true --fd $(sockets.web)"

    [web]
    address = "[::1]:0"
    """
    checks = [c.what for c in check_stack(str(write_stack(tmp_path, text)))]
    assert "sockets.web 127.0.0.1:0" in checks
    assert "watchers.web (web --bind) [::1]:0" in checks


def test_unresolvable_host_fails(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    text = '[watchers.x]\ncmd = "true"\n[metrics]\naddress = "nowhere.invalid:9100"\n'
    (error,) = errors_of(write_stack(tmp_path, text))
    assert error.startswith("metrics.address: cannot resolve host 'nowhere.invalid'")


def test_program_with_a_slash_is_looked_up_from_the_working_dir(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "run").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "run").chmod(0o755)
    stack_file = write_stack(
        tmp_path, '[watchers.x]\ncmd = "bin/run"\n[watchers.y]\ncmd = "bin/no"\n'
    )
    assert errors_of(stack_file) == ["watchers.y.cmd: no such program 'bin/no'"]


def two_servers_on_one_port(tmp_path: Path) -> Path:
    """A stack of two Mongrel2 watchers whose servers (one config) share port 6767."""
    conf = tmp_path / "two.conf"
    conf.write_text(
        DEMO_CONF.read_text().replace(
            "servers = [demo]",
            'other = Server(uuid="other", name="other", bind_addr="0.0.0.0", port=6767, '
            'chroot="./", access_log="/logs/a.log", error_log="/logs/e.log", '
            'pid_file="/run/o.pid", default_host="localhost", hosts=[Host(name="localhost", '
            'routes={"/": app})])\nservers = [demo, other]',
        )
    )
    stack = tmp_path / "stack.toml"
    stack.write_text(
        f'[stack]\nrundir = "{tmp_path / "run"}"\n'
        '[watchers.front]\ntype = "mongrel2"\nconfig = "two.conf"\nserver = "demo"\n'
        '[watchers.back]\ntype = "mongrel2"\nconfig = "two.conf"\nserver = "other"\n'
    )
    return stack


def test_two_mongrel2_watchers_on_one_address_fail_the_check(tmp_path):
    stack = two_servers_on_one_port(tmp_path)
    errors = [check.error for check in check_stack(str(stack)) if check.error]
    assert errors == [
        "watchers.back: its server would listen on 0.0.0.0:6767, as watchers.front's does "
        "(two Mongrel2 servers cannot share it)"
    ]
