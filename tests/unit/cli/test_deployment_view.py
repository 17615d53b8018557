"""One view of several supervisors: merged tables, the JSON document and the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from m2bridge.cli import overview
from m2bridge.cli.overview import Answer, describe_failure, format_answers, outcome, to_json
from m2bridge.cli.top import render_each
from m2bridge.supervisor.control import Errno

DOWN = Answer("b", "tcp://10.0.0.2:5555", None, "no answer from tcp://10.0.0.2:5555", 7)
REFUSED = Answer("c", "tcp://10.0.0.3:5555", None, "missing or wrong token", Errno.UNAUTHORIZED)


def process(pid: int) -> dict[str, Any]:
    return {
        "pid": pid,
        "wid": 1,
        "state": "ready",
        "cpu": 0.5,
        "rss": 2048,
        "fds": 7,
        "age": 3.0,
        "served": 10,
        "in_flight": 0,
    }


def watcher_status(name: str, state: str = "active", reason: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "numprocesses": 2,
        "running": 2,
        "ready": 2,
        "stopping": 0,
        "reason": reason,
    }


def answer(name: str, data: dict[str, Any]) -> Answer:
    return Answer(name, f"tcp://{name}:5555", data)


def test_stats_of_two_supervisors_is_one_table_with_a_supervisor_column():
    a = answer("a", {"watchers": [{"name": "w", "processes": [process(11), process(12)]}]})
    b = answer("b", {"watchers": [{"name": "w", "processes": [process(21)]}], "mongrel2": []})
    lines = format_answers("stats", [a, b]).splitlines()
    assert lines[0].split() == [
        "SUPERVISOR",
        "WATCHER",
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
    assert [line.split()[:3] for line in lines[1:]] == [
        ["a", "w", "11"],
        ["a", "w", "12"],
        ["b", "w", "21"],
    ]
    assert lines[1].split()[6:] == ["2.0K", "7", "3.0", "10", "0", "-", "-"]


def test_stats_shows_each_mongrel2_under_its_supervisor_and_the_unreachable_one_last():
    probe = {"watcher": "m2", "answering": True, "connections": 3, "tasks": 9, "endpoint": "x"}
    a = answer("a", {"watchers": [], "mongrel2": [probe]})
    text = format_answers("stats", [DOWN, a])
    assert text.splitlines()[1:] == [
        "a: m2 control port: 3 open connections, 9 tasks",
        "b: unreachable: no answer from tcp://10.0.0.2:5555",
    ]


def test_status_merges_watchers_and_prefixes_each_problem_with_its_supervisor():
    a = answer("a", {"watchers": [watcher_status("w")], "mongrel2": []})
    b = answer("b", {"watchers": [watcher_status("w", "backoff", "exited 1")]})
    lines = format_answers("status", [a, b]).splitlines()
    assert lines[0].split() == [
        "SUPERVISOR",
        "WATCHER",
        "STATE",
        "PROCS",
        "READY",
        "STOPPING",
        "REASON",
    ]
    assert lines[1].split() == ["a", "w", "active", "2/2", "2", "0"]
    assert lines[2].split() == ["b", "w", "backoff", "2/2", "2", "0", "exited", "1"]
    assert lines[3] == "b: not running as asked: w (backoff)"
    assert outcome("status", [a, b]) == overview.UNHEALTHY
    assert outcome("status", [a]) == overview.OK


def test_list_dstats_and_listsockets_merge_into_tables():
    listed = format_answers(
        "list", [answer("a", {"watchers": ["w", "m2"]}), answer("b", {"watchers": ["w"]})]
    )
    assert [line.split() for line in listed.splitlines()] == [
        ["SUPERVISOR", "WATCHER"],
        ["a", "w"],
        ["a", "m2"],
        ["b", "w"],
    ]
    dstats = {"stack": "web", "pid": 5, "cpu": 1.5, "rss": 3 * 1024 * 1024, "fds": 9, "age": 60.0}
    dstats.update(watchers=1, processes=2, commands=4, quitting=False)
    lines = format_answers("dstats", [answer("a", dstats)]).splitlines()
    assert lines[0].split() == [
        "SUPERVISOR",
        "STACK",
        "PID",
        "CPU%",
        "RSS",
        "FDS",
        "UP",
        "WATCHERS",
        "PROCESSES",
        "COMMANDS",
    ]
    assert lines[1].split() == ["a", "web", "5", "1.5", "3.0M", "9", "60.0", "1", "2", "4"]
    sockets = {"sockets": [{"name": "http", "fd": 3, "address": "127.0.0.1:80"}]}
    assert format_answers("listsockets", [answer("a", sockets)]).splitlines()[1].split() == [
        "a",
        "http",
        "3",
        "127.0.0.1:80",
    ]


def test_without_any_answer_there_is_no_table_only_why():
    assert format_answers("stats", [DOWN, REFUSED]) == (
        "b: unreachable: no answer from tcp://10.0.0.2:5555\nc: error: missing or wrong token"
    )


def test_a_write_command_reports_a_line_per_supervisor():
    a = answer("a", {"name": "w", "numprocesses": 3})
    assert format_answers("incr", [a, REFUSED]) == (
        "a: w: 3 processes\nc: error: missing or wrong token"
    )


def test_json_has_data_or_error_per_supervisor_in_order():
    a = answer("a", {"watchers": ["w"]})
    assert to_json([a, DOWN]) == {
        "supervisors": [
            {"name": "a", "endpoint": "tcp://a:5555", "data": {"watchers": ["w"]}},
            {
                "name": "b",
                "endpoint": "tcp://10.0.0.2:5555",
                "error": "no answer from tcp://10.0.0.2:5555",
                "errno": 7,
            },
        ]
    }


@pytest.mark.parametrize(
    ("answers", "verdict"),
    [
        ([REFUSED, DOWN], overview.UNREACHABLE),
        ([REFUSED], overview.FAILED),
        ([answer("a", {"watchers": []})], overview.OK),
    ],
)
def test_unreachable_outweighs_a_command_error(answers, verdict):
    assert outcome("list", answers) == verdict


def test_a_failure_says_whether_the_supervisor_was_reached():
    assert describe_failure(DOWN).startswith("b: unreachable: ")
    assert describe_failure(REFUSED) == "c: error: missing or wrong token"
    assert DOWN.unreachable
    assert not REFUSED.unreachable


def test_top_screen_has_a_block_per_supervisor():
    dstats = {
        "stack": "web",
        "pid": 5,
        "cpu": 0.0,
        "rss": None,
        "fds": 9,
        "age": 1.0,
        "processes": 1,
    }
    status = {"watchers": [watcher_status("w")]}
    stats = {"watchers": [{"name": "w", "processes": [process(11)]}]}
    a = answer("a", {"dstats": dstats, "status": status, "stats": stats})
    screen = render_each([a, DOWN])
    assert screen.startswith("m2bridge top - 2 supervisors - ")
    assert "== a (tcp://a:5555) - stack web\nsupervisor pid 5" in screen
    assert "w: 1 processes\n" in screen
    assert "[active]" in screen
    assert screen.endswith("== b: unreachable: no answer from tcp://10.0.0.2:5555")
