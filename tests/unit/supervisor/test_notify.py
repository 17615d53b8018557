"""The sd_notify side of the supervisor without a socket: addresses, the watchdog setting,
message formatting, what a ``Notifier`` sends when (with a recording sender), and the example
unit file's settings against the supervisor's."""

from __future__ import annotations

import configparser
import logging
import math
from pathlib import Path

import pytest

from m2bridge.supervisor import notify
from m2bridge.supervisor.notify import Notifier
from m2bridge.supervisor.stack import KILL_MARGIN, load_stack, runtime_base


def fields_of(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


@pytest.fixture
def sent() -> list[bytes]:
    return []


@pytest.fixture
def notifier(sent: list[bytes]) -> Notifier:
    return Notifier(sent.append)


def test_child_environment_drops_notify_socket_and_watchdog_variables_only():
    env = {"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "2", "PATH": "/bin"}
    assert notify.child_environment(env) == {"PATH": "/bin"}


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@sd-notify/123", "\0sd-notify/123"),
        ("@", None),
        ("relative/path", None),
        ("vsock:2:1234", None),
    ],
)
def test_socket_address_keeps_paths_and_turns_at_into_the_abstract_namespace(value, address):
    assert notify.socket_address(value) == address


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "400000"}, 0.2),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42"}, 5.0),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "43"}, None),
    ],
)
def test_watchdog_interval_is_half_watchdog_usec_for_this_pid_only(environ, interval):
    assert notify.watchdog_interval(environ, pid=42) == interval


@pytest.mark.parametrize("usec", ["0", "-5", "ten"])
def test_a_bad_watchdog_usec_means_no_watchdog_and_a_warning(usec, caplog):
    with caplog.at_level(logging.WARNING):
        assert notify.watchdog_interval({"WATCHDOG_USEC": usec}, pid=1) is None
    assert "WATCHDOG_USEC" in caplog.text


def test_a_message_is_key_value_lines_and_a_value_stays_on_one_line():
    data = notify.message([("READY", "1"), ("STATUS", "two\nlines")])
    assert data == b"READY=1\nSTATUS=two lines"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((3, 4, [], False), "3 watchers, 4 processes, healthy"),
        ((1, 1, [], False), "1 watcher, 1 process, healthy"),
        ((2, 1, ["not running as asked: w (starting)"], False),
         "2 watchers, 1 process: not running as asked: w (starting)"),
        ((2, 3, ["x"], True), "stopping: 2 watchers, 3 processes left"),
    ],
)  # fmt: skip
def test_status_line_summarises_counts_and_the_first_problem(args, text):
    assert notify.status_line(*args) == text


def test_status_line_is_cut_at_status_max():
    text = notify.status_line(1, 1, ["x" * 500], False)
    assert len(text) == notify.STATUS_MAX
    assert text.endswith("...")


def test_without_notify_socket_the_notifier_does_nothing():
    quiet = Notifier.from_environ({"WATCHDOG_USEC": "400000"})
    assert not quiet.enabled
    quiet.update(0.0, as_asked=True, settled=True, status="x")
    quiet.reloading()
    quiet.stopping()
    quiet.ping(1.0)
    assert not quiet.watchdog_due(1.0)
    assert quiet.wait_limit(0.0) == math.inf
    quiet.close()


def test_a_notify_socket_that_is_no_socket_address_is_refused_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert not Notifier.from_environ({"NOTIFY_SOCKET": "relative"}).enabled
    assert "NOTIFY_SOCKET" in caplog.text


def test_ready_comes_once_when_the_stack_first_runs_as_asked(notifier, sent):
    notifier.update(0.0, as_asked=False, settled=False, status="1 watcher: starting")
    notifier.update(0.1, as_asked=False, settled=False, status="1 watcher: starting")
    assert [fields_of(d) for d in sent] == [{"STATUS": "1 watcher: starting"}]
    notifier.update(0.2, as_asked=True, settled=True, status="healthy")
    notifier.update(0.3, as_asked=True, settled=True, status="healthy")
    assert fields_of(sent[-1]) == {"READY": "1", "STATUS": "healthy"}
    assert len(sent) == 2


def test_a_reload_sends_reloading_then_ready_once_settled(notifier, sent):
    notifier.update(0.0, as_asked=True, settled=True, status="ok")
    notifier.reloading()
    reloading = fields_of(sent[-1])
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notifier.update(0.1, as_asked=True, settled=False, status="ok")
    notifier.update(0.2, as_asked=True, settled=False, status="ok")
    assert fields_of(sent[-1]) == {"STATUS": "reloading: ok"}
    assert len(sent) == 3
    notifier.update(0.3, as_asked=True, settled=True, status="ok")
    assert fields_of(sent[-1]) == {"READY": "1", "STATUS": "ok"}


def test_reloading_is_ignored_before_ready_and_while_stopping(notifier, sent):
    notifier.reloading()
    assert sent == []
    notifier.stopping()
    notifier.stopping()
    notifier.reloading()
    notifier.update(0.0, as_asked=True, settled=True, status="")
    assert sent == [b"STOPPING=1"]


def test_the_watchdog_pings_every_interval_and_bounds_the_loop_wait(sent):
    dog = Notifier(sent.append, watchdog=0.2)
    assert dog.watchdog_due(0.0)
    dog.update(0.0, as_asked=False, settled=False, status="")
    assert sent == [b"WATCHDOG=1"]
    assert dog.wait_limit(0.05) == pytest.approx(0.15)
    dog.ping(0.1)
    assert len(sent) == 1
    dog.ping(0.2)
    assert sent == [b"WATCHDOG=1"] * 2
    assert dog.wait_limit(1.0) == 0.0


def test_close_without_a_closable_sender_is_fine(notifier):
    notifier.close()


# -- the example unit file agrees with the supervisor --

UNIT_FILE = Path(__file__).parents[3] / "examples" / "systemd" / "m2bridge.service"


def unit_settings() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(UNIT_FILE.read_text())
    return dict(parser["Service"])


def test_the_unit_file_waits_for_ready_reloads_with_hup_and_lets_the_supervisor_stop():
    service = unit_settings()
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["ExecStart"].endswith(" up /etc/m2bridge/stack.toml")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "mixed"  # TERM to the supervisor only; KILL for leftovers
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"]) >= 1  # whole seconds; the loop pings every half


def test_the_unit_file_puts_the_runtime_directory_in_its_runtime_directory(monkeypatch):
    service = unit_settings()
    assert service["Environment"] == "XDG_RUNTIME_DIR=%t"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run")  # %t of a system service
    assert runtime_base() == Path("/run") / service["RuntimeDirectory"]


def test_the_unit_file_gives_the_example_stack_time_to_stop_gracefully():
    stack = load_stack(Path(__file__).parents[3] / "examples" / "stack.toml")
    levels: dict[int, float] = {}
    for spec in stack.watchers.values():
        levels[spec.priority] = max(levels.get(spec.priority, 0.0), spec.graceful_timeout)
    worst = sum(timeout + KILL_MARGIN for timeout in levels.values())
    assert worst < int(unit_settings()["TimeoutStopSec"])
