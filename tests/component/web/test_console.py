"""``m2bridge web`` as a process against a real ``m2bridge up`` supervisor: the state it shows,
commands over HTTP and their CSRF rules, the console token, the event stream, startup refusals
and a clean stop."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
from typing import Any

import pytest

from tests.component.web import WEB, running_console
from tests.helpers.mongrel2 import free_port, port_held
from tests.helpers.stack import running_stack
from tests.helpers.waiting import wait_until

STACK = '[watchers.sleeper]\ncmd = "sleep 300"\nnumprocesses = 2\n'
TOKEN = "console-token-for-the-tests-0123456789"


@pytest.fixture
def stack(base):
    with running_stack(base, STACK) as stack:
        stack.wait_until(lambda: len(stack.processes("sleeper")) == 2)
        yield stack


def ctl_status(stack, name: str) -> dict[str, Any]:
    done = stack.ctl("--json", "status", name)
    assert done.returncode in (0, 4), done.stderr  # 4: still starting the new process
    watcher: dict[str, Any] = json.loads(done.stdout)["watchers"][0]
    return watcher


def web(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``m2bridge web`` expecting it to refuse at once."""
    return subprocess.run(
        [*WEB, *argv], capture_output=True, text=True, timeout=20, env=env, check=False
    )


# -- what it shows --


def test_state_shows_the_processes_the_supervisor_runs(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        assert wait_until(lambda: console.state()["at"] is not None, 5)
        state = console.state()
        assert state["error"] is None
        shown = {p["pid"] for w in state["stats"]["watchers"] for p in w["processes"]}
        assert shown == {p["pid"] for p in stack.processes("sleeper")}
        assert state["status"]["watchers"][0]["numprocesses"] == 2
        assert state["health"]["healthy"] is True
        assert set(state["point"]["watchers"]["sleeper"]["cpu_by_wid"]) == {"1", "2"}
        assert f"listening on {console.url}/ for {stack.endpoint}" in console.log()
        assert "no token (loopback clients only)" in console.log()


def test_page_and_static_files_are_served(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        status, headers, body = console.request("GET", "/")
        assert status == 200
        assert b'name="m2bridge-csrf"' in body
        status, headers, body = console.request("GET", "/static/uPlot.iife.min.js")
        assert status == 200
        assert headers["Content-Type"].startswith("text/javascript")
        assert body.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")


# -- commands --


def test_incr_over_http_runs_one_more_process(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        status, answer = console.command("incr", "sleeper")
        assert (status, answer) == (
            200,
            {"ok": True, "data": {"name": "sleeper", "numprocesses": 3}},
        )
        assert ctl_status(stack, "sleeper")["numprocesses"] == 3
        stack.wait_until(lambda: len(stack.processes("sleeper")) == 3)
        assert "command incr sleeper from 127.0.0.1: ok" in console.log()


def test_a_command_without_the_csrf_header_or_from_another_origin_is_refused(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        status, answer = console.command("incr", "sleeper", csrf=False)
        assert status == 403
        assert answer["ok"] is False
        status, _ = console.command("incr", "sleeper", {"Origin": "http://evil.example"})
        assert status == 403
        assert ctl_status(stack, "sleeper")["numprocesses"] == 2
        assert "403 POST /api/command" in console.log()


def test_supervisor_errors_are_passed_on(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        status, answer = console.command("incr", "nosuch")
        assert status == 409
        assert answer == {"ok": False, "error": "no watcher named 'nosuch'", "errno": 5}
        status, answer = console.command("quit", "sleeper")
        assert status == 400
        assert stack.proc.poll() is None


def test_unreachable_supervisor_shows_an_error_and_commands_get_502(base):
    endpoint = f"ipc://{base}/nothing.ctl"
    with running_console(base, "-e", endpoint) as console:
        assert wait_until(lambda: console.state()["error"], 5)
        assert console.state()["error"] == f"no supervisor at {endpoint}"
        status, answer = console.command("incr", "hello")
        assert status == 502
        assert answer["error"] == f"no supervisor at {endpoint}"
        polls = f"supervisor at {endpoint}: no supervisor at"
        assert console.log().count(polls) == 1  # once per outage, not once per poll


# -- the console token --


def test_with_a_token_a_request_without_it_is_refused(base, stack):
    with running_console(base, "-s", str(stack.stack_file), token=TOKEN) as console:
        assert console.request("GET", "/", auth=False)[0] == 401
        assert console.request("GET", "/api/state", auth=False)[0] == 401
        assert console.request("GET", "/events", auth=False)[0] == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert console.request("GET", "/api/state", headers=wrong, auth=False)[0] == 401
        assert console.request("GET", "/api/state")[0] == 200  # Bearer
        assert "401 GET /api/state from 127.0.0.1" in console.log()
        assert "console token required" in console.log()


def test_token_in_the_url_sets_a_cookie_that_opens_the_console(base, stack):
    with running_console(base, "-s", str(stack.stack_file), token=TOKEN) as console:
        status, headers, _ = console.request("GET", f"/?token={TOKEN}", auth=False)
        assert status == 303
        assert headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"m2bridge_console={TOKEN};")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        with_cookie = {"Cookie": cookie.split(";")[0]}
        assert console.request("GET", "/", headers=with_cookie, auth=False)[0] == 200
        status, answer = console.command("incr", "sleeper", with_cookie)
        assert status == 200
        assert answer["data"]["numprocesses"] == 3


def test_token_from_the_environment_allows_a_non_loopback_bind(base, stack):
    port = free_port()
    env = {**os.environ, "M2BRIDGE_WEB_TOKEN": TOKEN}
    argv = [*WEB, "-s", str(stack.stack_file), "--bind", f"0.0.0.0:{port}"]
    log_file = base / "web-any.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        assert wait_until(lambda: "listening on" in log_file.read_text(), 15), log_file.read_text()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/api/state")
        assert conn.getresponse().status == 401
        conn.close()
        assert "console token required" in log_file.read_text()
    finally:
        proc.terminate()
        proc.wait(10)


# -- refusals at startup --


def test_non_loopback_bind_without_a_token_exits_2(stack):
    env = {k: v for k, v in os.environ.items() if k != "M2BRIDGE_WEB_TOKEN"}
    done = web("-s", str(stack.stack_file), "--bind", "0.0.0.0:9180", env=env)
    assert done.returncode == 2
    assert "is not a loopback address: give a console token" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bind", "nonsense"], "--bind must be HOST:PORT"),
        (["--interval", "0"], "--interval must be from 0.1 to 60 seconds"),
        (["--web-token-file", "/nonexistent/token"], "cannot read /nonexistent/token"),
        (["--log-level", "loud"], "unknown --log-level"),
    ],
)
def test_bad_options_exit_2(stack, argv, message):
    done = web("-s", str(stack.stack_file), *argv)
    assert done.returncode == 2
    assert message in done.stderr


def test_a_short_token_exits_2(stack):
    env = {**os.environ, "M2BRIDGE_WEB_TOKEN": "short"}
    done = web("-s", str(stack.stack_file), env=env)
    assert done.returncode == 2
    assert "16 to 512 characters" in done.stderr


def test_no_supervisor_to_watch_exits_3(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "M2BRIDGE_CONTROL"}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)  # where `ctl` looks for running supervisors: none
    done = web(env=env)
    assert done.returncode == 3
    assert "no supervisor running" in done.stderr


def test_a_port_in_use_exits_1(stack):
    port = free_port()
    with port_held(port):
        done = web("-s", str(stack.stack_file), "--bind", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


# -- the event stream --


def read_event(response: http.client.HTTPResponse) -> tuple[str, dict[str, Any]]:
    """The next named event of a stream (skipping retry and heartbeat lines)."""
    name, data = "", ""
    while True:
        line = response.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and name:
            return name, json.loads(data)


def open_stream(port: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    return conn, response


def test_events_send_the_history_then_updates_and_forget_clients_that_leave(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        assert wait_until(lambda: len(console.state()["point"] or {}) > 0, 5)
        first, stream = open_stream(console.port)
        name, history = read_event(stream)
        assert name == "history"
        assert len(history["points"]) >= 1
        assert history["state"]["stats"]["watchers"][0]["name"] == "sleeper"
        updates = [read_event(stream) for _ in range(2)]
        assert [name for name, _ in updates] == ["update", "update"]
        assert updates[1][1]["point"]["t"] > updates[0][1]["point"]["t"]

        second, other = open_stream(console.port)
        assert read_event(other)[0] == "history"
        assert console.state()["subscribers"] == 2
        first.close()
        assert wait_until(lambda: console.state()["subscribers"] == 1, 5)
        second.close()
        assert wait_until(lambda: console.state()["subscribers"] == 0, 5)


def test_term_stops_the_console_even_with_an_open_stream(base, stack):
    with running_console(base, "-s", str(stack.stack_file)) as console:
        conn, stream = open_stream(console.port)
        assert read_event(stream)[0] == "history"
        console.proc.send_signal(signal.SIGTERM)
        stream.read()  # the stream ends cleanly: no IncompleteRead, no wait for a timeout
        assert console.proc.wait(10) == 0
        assert "stopping" in console.log()
        conn.close()
