"""Each control command against a FakeView: client-side parsing, execution, human output."""

from __future__ import annotations

from typing import Any

import pytest

from m2bridge.errors import ControlError
from m2bridge.supervisor import commands
from m2bridge.supervisor.commands import COMMANDS, UsageError
from m2bridge.supervisor.commands.base import Command, human_bytes, table
from m2bridge.supervisor.control import Errno


class FakeView:
    """A supervisor with watchers ``hello`` (2 processes) and ``web`` (1); records calls."""

    def __init__(self) -> None:
        self.counts = {"hello": 2, "web": 1}
        self.calls: list[tuple[str, ...]] = []
        self.quitting = False

    def _check(self, name: str) -> None:
        if name not in self.counts:
            raise ControlError(f"no watcher named {name!r}", Errno.NO_SUCH_WATCHER)

    def watcher_names(self) -> list[str]:
        return list(self.counts)

    def watcher_status(self, name: str) -> dict[str, Any]:
        self._check(name)
        n = self.counts[name]
        return {
            "name": name,
            "state": "active",
            "numprocesses": n,
            "running": n,
            "ready": n,
            "stopping": 0,
            "reason": "",
        }

    def numprocesses(self, name: str) -> int:
        self._check(name)
        return self.counts[name]

    def set_numprocesses(self, name: str, count: int) -> int:
        self._check(name)
        self.counts[name] = count
        return count

    def process_stats(self, name: str) -> list[dict[str, Any]]:
        self._check(name)
        return [
            {"pid": 100 + wid, "wid": wid, "state": "ready", "cpu": 1.5, "rss": 20 * 1024 * 1024,
             "fds": 12, "age": 3.2, "served": 40, "in_flight": 2, "errors": 0,
             "rejected": 3, "timed_out": 1}
            for wid in range(1, self.counts[name] + 1)
        ]  # fmt: skip

    def watcher_report(self, name: str) -> dict[str, Any]:
        processes = self.process_stats(name)
        served = sum(p["served"] for p in processes)
        return {
            "name": name,
            "processes": processes,
            "totals": {"served": served + 5, "in_flight": 4, "errors": 1, "rejected": 6,
                       "timed_out": 2},
            "latency": None,
            "restarts": {"crash": 1},
        }  # fmt: skip

    def mongrel2_status(self) -> list[dict[str, Any]]:
        return [
            {"watcher": "web", "endpoint": "ipc://run/control", "answering": True,
             "connections": 7, "tasks": 9, "error": "", "failing": False}
        ]  # fmt: skip

    def supervisor_stats(self) -> dict[str, Any]:
        return {"pid": 1, "cpu": 0.1, "rss": 1024, "fds": 9, "age": 5.0, "watchers": 2}

    def reload(self, name: str) -> dict[str, Any]:
        self.calls.append(("reload", name))
        return {"watchers": [name] if name else ["hello"]}

    def restart(self, name: str) -> dict[str, Any]:
        self.calls.append(("restart", name))
        return {"watchers": [name] if name else list(self.counts)}

    def start(self, name: str) -> dict[str, Any]:
        self._check(name)
        self.calls.append(("start", name))
        return {"name": name}

    def stop(self, name: str) -> dict[str, Any]:
        self._check(name)
        self.calls.append(("stop", name))
        return {"name": name}

    def send_signal(self, name: str, signal: str) -> int:
        self._check(name)
        self.calls.append(("signal", name, signal))
        return self.counts[name]

    def sockets(self) -> list[dict[str, Any]]:
        return [{"name": "web", "fd": 5, "address": "127.0.0.1:8080"}]

    def quit(self) -> None:
        self.quitting = True


def run(view: FakeView, line: str) -> tuple[dict[str, Any], str]:
    """Parse like the CLI, execute like the supervisor, format like the CLI."""
    name, *argv = line.split()
    command = COMMANDS[name]
    data = commands.run(view, name, command.parse_args(argv))
    return data, command.format(data)


def test_registry_is_explicit_and_complete():
    assert sorted(COMMANDS) == sorted([
        "list", "status", "incr", "decr", "numprocesses", "stats", "dstats", "reload",
        "restart", "start", "stop", "signal", "listsockets", "quit",
    ])  # fmt: skip
    assert all(name == command.name for name, command in COMMANDS.items())


def test_every_command_has_a_help_text_starting_with_its_usage():
    for name, command in COMMANDS.items():
        assert command.usage.startswith(name), name
        assert len(command.help) > len(name) + 10


def test_base_command_defaults():
    command = Command()
    assert command.parse_args([]) == {}
    assert command.format({"a": 1, "b": "x"}) == "a: 1\nb: x"
    with pytest.raises(NotImplementedError):
        command.execute(FakeView(), {})


def test_unknown_command_has_its_errno():
    with pytest.raises(ControlError, match="unknown command 'bogus'") as info:
        commands.run(FakeView(), "bogus", {})
    assert info.value.errno == Errno.UNKNOWN_COMMAND


def test_list_prints_one_name_per_line():
    assert run(FakeView(), "list") == ({"watchers": ["hello", "web"]}, "hello\nweb")


def test_incr_adds_one_by_default_and_n_when_given():
    view = FakeView()
    assert run(view, "incr hello")[1] == "hello: 3 processes"
    assert run(view, "incr hello 4")[0] == {"name": "hello", "numprocesses": 7}


def test_decr_never_goes_below_zero():
    view = FakeView()
    assert run(view, "decr hello")[0]["numprocesses"] == 1
    assert run(view, "decr hello 5")[0]["numprocesses"] == 0


def test_numprocesses_reads_or_sets():
    view = FakeView()
    assert run(view, "numprocesses web")[1] == "web: 1 processes"
    assert run(view, "numprocesses web 4")[0]["numprocesses"] == 4
    assert view.counts["web"] == 4


def test_status_of_all_is_a_table():
    text = run(FakeView(), "status")[1].splitlines()
    assert text[0].split() == ["WATCHER", "STATE", "PROCS", "READY", "STOPPING", "REASON"]
    assert text[1].split() == ["hello", "active", "2/2", "2", "0"]


def test_status_of_one_watcher():
    data, _ = run(FakeView(), "status web")
    assert [w["name"] for w in data["watchers"]] == ["web"]


def test_stats_shows_a_row_per_process():
    data, text = run(FakeView(), "stats hello")
    lines = text.splitlines()
    assert lines[0] == "hello: 2 processes; since start: 85 served, 1 5xx, 6 503, 2 504"
    assert lines[1].split() == [
        "PID",
        "WID",
        "STATE",
        "CPU%",
        "RSS",
        "FDS",
        "AGE",
        "SERVED",
        "IN-FLIGHT",
        "503",
        "504",
    ]
    row = ["101", "1", "ready", "1.5", "20.0M", "12", "3.2", "40", "2", "3", "1"]
    assert lines[2].split() == row
    assert len(data["watchers"][0]["processes"]) == 2


def test_stats_of_every_watcher_separates_blocks():
    assert run(FakeView(), "stats")[1].count(" processes; since start") == 2


def test_stats_ends_with_the_mongrel2_control_port_figures():
    data, text = run(FakeView(), "stats")
    assert text.endswith("web control port: 7 open connections, 9 tasks")
    assert data["mongrel2"][0]["connections"] == 7


def test_stats_of_a_watcher_leaves_out_other_mongrel2s():
    assert run(FakeView(), "stats hello")[0]["mongrel2"] == []


def test_stats_says_why_a_mongrel2_gives_no_figures():
    view = FakeView()
    down = {"watcher": "web", "endpoint": "ipc://x", "answering": False, "connections": None,
            "tasks": None}  # fmt: skip
    view.mongrel2_status = lambda: [{**down, "error": "not running", "failing": False}]  # type: ignore[method-assign]
    assert run(view, "stats")[1].endswith("web control port ipc://x: not running")
    assert run(view, "status")[0]["healthy"] is True  # the watcher's own row tells
    view.mongrel2_status = lambda: [{**down, "error": "", "failing": False}]  # type: ignore[method-assign]
    assert run(view, "stats")[1].endswith("web control port ipc://x: no answer yet")


def test_status_is_unhealthy_when_a_mongrel2_control_port_fails():
    view = FakeView()
    view.mongrel2_status = lambda: [  # type: ignore[method-assign]
        {"watcher": "web", "endpoint": "ipc://x", "answering": False, "connections": None,
         "tasks": None, "error": "no answer in 2 s", "failing": True}
    ]  # fmt: skip
    data, text = run(view, "status")
    assert data["healthy"] is False
    assert data["problems"] == ["web: control port ipc://x fails: no answer in 2 s"]
    assert text.endswith("web: control port ipc://x fails: no answer in 2 s")


def test_dstats_lists_the_supervisor_numbers():
    text = run(FakeView(), "dstats")[1]
    assert "pid: 1" in text
    assert "rss: 1.0K" in text


def test_reload_without_name_reloads_the_default_set():
    view = FakeView()
    assert run(view, "reload")[1] == "reloading hello"
    assert run(view, "reload web")[1] == "reloading web"
    assert view.calls == [("reload", ""), ("reload", "web")]


def test_restart_without_name_restarts_everything():
    assert run(FakeView(), "restart")[1] == "restarting hello, web"


def test_start_and_stop_reach_the_view():
    view = FakeView()
    assert run(view, "stop web")[1] == "web: stopping"
    assert run(view, "start web")[1] == "web: starting"
    assert view.calls == [("stop", "web"), ("start", "web")]


def test_signal_passes_the_name_through():
    view = FakeView()
    assert run(view, "signal hello usr1")[1] == "hello: sent USR1 to 2 processes"
    assert view.calls == [("signal", "hello", "usr1")]


def test_listsockets_is_a_table():
    assert run(FakeView(), "listsockets")[1].splitlines()[1].split() == [
        "web",
        "5",
        "127.0.0.1:8080",
    ]


def test_quit_asks_the_view_to_quit():
    view = FakeView()
    assert run(view, "quit") == ({"quitting": True}, "quitting")
    assert view.quitting


@pytest.mark.parametrize(
    "line",
    [
        "incr", "incr a b c", "incr hello -1", "incr hello two", "decr", "numprocesses",
        "stats a b", "status a b", "start", "stop a b", "signal hello", "signal", "list x",
        "quit now", "dstats x", "listsockets x", "reload a b",
    ],
)  # fmt: skip
def test_bad_command_line_is_a_usage_error(line):
    name, *argv = line.split()
    with pytest.raises(UsageError) as info:
        COMMANDS[name].parse_args(argv)
    assert info.value.errno == Errno.BAD_ARGUMENTS


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("incr", {}),
        ("incr", {"name": 3}),
        ("incr", {"name": "hello", "n": -2}),
        ("incr", {"name": "hello", "n": "2"}),
        ("decr", {"name": "hello", "n": True}),
        ("signal", {"name": "hello"}),
        ("start", {"name": ""}),
    ],
)
def test_bad_args_from_a_script_are_refused_server_side(name, args):
    with pytest.raises(ControlError) as info:
        commands.run(FakeView(), name, args)
    assert info.value.errno == Errno.BAD_ARGUMENTS


@pytest.mark.parametrize("line", ["incr nope", "stats nope", "stop nope", "signal nope HUP"])
def test_unknown_watcher_has_its_errno(line):
    with pytest.raises(ControlError) as info:
        run(FakeView(), line)
    assert info.value.errno == Errno.NO_SUCH_WATCHER


def test_table_aligns_columns_and_shows_none_as_dash():
    assert table(("A", "BB"), [("xyz", None), ("1", 2)]) == "A    BB\nxyz  -\n1    2"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "-"),
        (512, "512B"),
        (2048, "2.0K"),
        (5 * 1024**2, "5.0M"),
        (3 * 1024**3, "3.0G"),
    ],
)
def test_human_bytes(value, text):
    assert human_bytes(value) == text


def test_stats_title_has_no_totals_for_a_watcher_without_counters():
    view = FakeView()
    report = view.watcher_report
    view.watcher_report = lambda name: {**report(name), "totals": None}  # type: ignore[method-assign]
    assert run(view, "stats web")[1].splitlines()[0] == "web: 1 processes"
