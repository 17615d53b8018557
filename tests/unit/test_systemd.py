"""Systemd socket activation: reading LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from m2bridge.cli import make_parser
from m2bridge.errors import ConfigError
from m2bridge.systemd import forget, listen_fd_names, listen_fds, select_fd

PID = 4242


def env(fds: str | None = "2", pid: str | None = str(PID), names: str | None = None):
    values = {"LISTEN_FDS": fds, "LISTEN_PID": pid, "LISTEN_FDNAMES": names, "PATH": "/bin"}
    return {key: value for key, value in values.items() if value is not None}


def test_fds_start_at_3_and_count_listen_fds():
    assert listen_fds(env(fds="3"), PID) == [3, 4, 5]


@pytest.mark.parametrize(
    "environ", [env(fds=None), env(pid=None), env(pid=str(PID + 1)), env(fds="0")]
)
def test_no_fds_when_unset_or_meant_for_another_process(environ):
    assert listen_fds(environ, PID) == []


@pytest.mark.parametrize(
    ("fds", "pid", "bad"), [("two", str(PID), "LISTEN_FDS"), ("1", "-1", "LISTEN_PID")]
)
def test_a_variable_that_is_not_a_number_is_a_config_error(fds, pid, bad):
    with pytest.raises(ConfigError, match=f"\\${bad} is"):
        listen_fds(env(fds=fds, pid=pid), PID)


def test_names_pair_with_the_fds_in_order():
    assert listen_fd_names(env(names="http:admin"), PID) == {"http": 3, "admin": 4}


@pytest.mark.parametrize("names", [None, "only-one"])
def test_missing_or_miscounted_names_are_all_unknown(names):
    assert listen_fd_names(env(names=names), PID) == {"unknown": 3}


def test_a_repeated_name_keeps_its_first_fd():
    assert listen_fd_names(env(names="web:web"), PID) == {"web": 3}


def test_select_takes_the_first_fd_without_a_name():
    assert select_fd(env(), PID) == 3


def test_select_by_name():
    assert select_fd(env(names="admin:web"), PID, "web") == 4


def test_select_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no socket of that name \(admin, web\)"):
        select_fd(env(names="admin:web"), PID, "api")


def test_select_without_sockets_says_why():
    with pytest.raises(ConfigError, match="LISTEN_PID is not this process"):
        select_fd(env(pid="1"), PID)


def test_forget_removes_the_variables_and_keeps_the_rest():
    environ = env(names="web:x")
    forget(environ)
    assert environ == {"PATH": "/bin"}
    forget(environ)  # nothing left to remove
    assert environ == {"PATH": "/bin"}


# ------------------------------------------------------------------ the example units

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "systemd"


def unit_settings(name: str) -> dict[str, str]:
    lines = (EXAMPLES / name).read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_example_service_serves_the_example_sockets_name_with_valid_serve_options():
    socket_unit = unit_settings("m2bridge-fd.socket")
    service = unit_settings("m2bridge-fd.service")
    program, command, *argv = shlex.split(service["ExecStart"])
    assert (program.rsplit("/", 1)[-1], command) == ("m2bridge", "serve")
    args = make_parser().parse_args(["serve", *argv])  # a bad option exits 2
    assert (args.fd, args.fd_name) == ("systemd", socket_unit["FileDescriptorName"])
    assert service["Requires"] == "m2bridge-fd.socket"
    assert float(service["TimeoutStopSec"]) > args.graceful_timeout
