"""`m2bridge up` with the real Mongrel2: the demo stack, the mongrel2 watcher type, quit."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import psutil
import pytest

from tests.helpers.http import get
from tests.helpers.mongrel2 import HandlerSpec, free_port, make_conf, run_mongrel2
from tests.helpers.stack import (
    CTL,
    EXAMPLES,
    UP,
    connect_as_nobody,
    count_started,
    demo,
    example_stack,
    mongrel2_stack,
    orphans,
    running_stack,
    stack_pids,
    wait_serving,
    write_stack,
)
from tests.helpers.waiting import wait_until


def test_demo_example_stack_serves_and_quits_without_orphans(base):
    text, port = example_stack(base, "stack.toml")
    with running_stack(base, text) as stack:
        wait_serving(stack, port, workers=2)
        names = [w["name"] for w in stack.call("status")["watchers"]]
        assert names == ["mongrel2", "relay", "hello"]
        served = stack.processes("hello")
        assert all(p["rss"] and p["fds"] for p in served)
        everyone = stack_pids(stack) + stack.descendants()
        quit_ = subprocess.run(
            [*CTL, "-s", str(stack.stack_file), "quit"], capture_output=True, text=True, timeout=20
        )
        assert (quit_.returncode, quit_.stdout) == (0, "quitting\n")
        assert stack.proc.wait(20) == 0
        assert orphans(everyone) == []
        log = stack.log()
        assert log.index("stopping hello") < log.index("stopping relay")
        assert log.index("stopping relay") < log.index("stopping mongrel2")
        assert "mongrel2.1 |" in log


def test_quit_under_load_finishes_requests_in_flight(base):
    with demo(base, app="handlers.sleepy:app", workers=2) as (stack, port):
        stack.wait_until(lambda: len(stack.pids("hello")) == 2, timeout=20)
        stack.wait_until(lambda: stack.status("mongrel2")["state"] == "active")
        results: list[tuple[int, bytes]] = []

        def slow() -> None:
            results.append(get(port, "/?seconds=1.5", timeout=10))

        threads = [threading.Thread(target=slow) for _ in range(6)]
        for thread in threads:
            thread.start()
        stack.wait_until(
            lambda: sum(p["in_flight"] or 0 for p in stack.processes("hello")) == 6, timeout=5
        )
        everyone = stack_pids(stack)
        stack.call("quit")
        for thread in threads:
            thread.join(10)
        assert results == [(200, b"slept 1.5\n")] * 6
        assert stack.proc.wait(20) == 0
        assert orphans(everyone) == []
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
        assert str(base) not in ps.stdout


def test_killed_mongrel2_is_restarted_and_serves_again(base):
    with demo(base, workers=1) as (stack, port):
        wait_serving(stack, port, workers=1)
        (m2pid,) = stack.pids("mongrel2")
        psutil.Process(m2pid).send_signal(signal.SIGKILL)
        stack.wait_until(lambda: stack.pids("mongrel2") not in ([], [m2pid]), timeout=15)
        stack.wait_until(lambda: stack.status("mongrel2")["state"] == "active")
        assert get(port) == (200, b"Hello, world!\n")
        assert "mongrel2.1 (pid" in stack.log()


def test_restart_reloads_the_mongrel2_config(base):
    with demo(base, workers=1) as (stack, port):
        wait_serving(stack, port, workers=1)
        (old,) = stack.pids("mongrel2")
        assert stack.call("restart", name="mongrel2") == {"watchers": ["mongrel2"]}
        stack.wait_until(lambda: stack.pids("mongrel2") not in ([], [old]), timeout=15)
        stack.wait_until(lambda: stack.status("mongrel2")["state"] == "active")
        assert get(port) == (200, b"Hello, world!\n")
        with pytest.raises(Exception, match="mongrel2 watcher: one process"):
            stack.call("incr", name="mongrel2")


def test_worker_that_crashes_at_import_is_backed_off_not_respawned_in_a_loop(base):
    extra = (
        "[watchers.hello.flapping]\nattempts = 2\nwindow = 10\nretry_in = 0.5\nmax_retries = 1\n"
    )
    with demo(base, app="handlers.no_such_module:app", workers=2, extra=extra) as (stack, _):
        stack.wait_until(lambda: stack.status("hello")["state"] == "failed", timeout=25)
        status = stack.status("hello")
        assert "flapping: gave up after 1 back-offs" in status["reason"]
        log = stack.log()
        started = count_started(stack, "hello")
        # each round: numprocesses spawns + one respawn per exit below attempts; two rounds
        assert 2 * 2 <= started <= 2 * (2 + 2 - 1)
        time.sleep(1.0)  # no signal for "nothing happens": watch the log stay still for 1 s
        assert stack.log().count(" started (pid") == log.count(" started (pid")
        assert "is flapping" in log
        assert "no_such_module" in log
        assert stack.status("mongrel2")["state"] == "active"


def run_up(base, text: str) -> subprocess.CompletedProcess[str]:
    """``m2bridge up`` on a stack that must not start: its exit status and output."""
    return subprocess.run(
        [*UP, str(write_stack(base, text))], capture_output=True, text=True, timeout=30
    )


def test_daemonizing_mongrel2_config_is_refused(base):
    text, _ = mongrel2_stack(base, settings={"server.daemonize": 1})
    result = run_up(base, text)
    assert result.returncode == 1
    assert "watchers.mongrel2.config" in result.stderr
    assert "must set server.daemonize to 0" in result.stderr


def test_broken_mongrel2_config_names_the_file_and_line(base):
    text, _ = mongrel2_stack(base)
    conf = base / "mongrel2.conf"
    conf.write_text(conf.read_text().replace("servers = [main]", "servers = [main,]"))
    result = run_up(base, text)
    assert result.returncode == 1
    assert f"watchers.mongrel2.config: {conf}:" in result.stderr


def test_fd_example_serves_on_the_supervisors_socket(base):
    text = (EXAMPLES / "fd_stack.toml").read_text()
    text = text.replace("[stack]\n", "", 1).replace("port = 8080", "port = 0")
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: len(stack.pids("web")) == 2, timeout=20)
        (listed,) = stack.call("listsockets")["sockets"]
        port = int(listed["address"].rsplit(":", 1)[1])
        assert get(port) == (200, b"Hello, world!\n")
        stack.call("incr", name="web")
        stack.wait_until(lambda: len(stack.pids("web")) == 3, timeout=20)
        statuses = {get(port)[0] for _ in range(20)}
        assert statuses == {200}


def test_control_of_a_mongrel2_stack_refuses_another_user_and_a_tokenless_tcp_client(base):
    ctl_port = free_port()
    control = f'[control]\nendpoint = "tcp://127.0.0.1:{ctl_port}"\ntoken = "t0ken"\n'
    text, port = mongrel2_stack(base, workers=1)
    with running_stack(base, control + text, wait=False) as stack:
        endpoint = f"tcp://127.0.0.1:{ctl_port}"
        tokenless = [*CTL, "-e", endpoint, "--timeout", "2"]
        stack.wait_until(lambda: "control at tcp://" in stack.log())
        refused = subprocess.run([*tokenless, "list"], capture_output=True, text=True, timeout=20)
        assert refused.returncode == 1
        assert "missing or wrong token" in refused.stderr
        allowed = subprocess.run(
            [*tokenless, "list"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "M2BRIDGE_TOKEN": "t0ken"},
        )
        assert (allowed.returncode, allowed.stdout) == (0, "mongrel2\nrelay\nhello\n")
        stack.wait_until(lambda: stack.ctl("status").stdout.count("active") == 3, timeout=20)
        assert get(port) == (200, b"Hello, world!\n")
    ipc_text, _ = mongrel2_stack(base, workers=1)
    with running_stack(base, ipc_text) as stack:
        assert connect_as_nobody(stack.rundir / "m2bridge.ctl") == "PermissionError"


def test_serve_workers_flag_runs_the_same_supervisor(base):
    handler = HandlerSpec(route="/")
    with run_mongrel2(base / "m2", [handler]) as server:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
        argv = [*UP[:3], "serve", "handlers.hello:app", "--workers", "2"]
        argv += ["--send-spec", handler.send_spec, "--recv-spec", handler.recv_spec]
        log_file = base / "serve.log"
        with open(log_file, "wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            name = "serve-handlers-hello-app"
            ctl = [*CTL, "--name", name, "--json"]

            def ready_count() -> int:
                result = subprocess.run(
                    [*ctl, "stats", name], capture_output=True, text=True, env=env, timeout=20
                )
                if result.returncode != 0:
                    return -1
                rows = json.loads(result.stdout)["watchers"][0]["processes"]
                return sum(1 for row in rows if row["state"] == "ready")

            assert wait_until(lambda: ready_count() == 2, 20, interval=0.2), log_file.read_text()
            assert get(server.port) == (200, b"Hello, world!\n")
            incr = subprocess.run(
                [*ctl, "--wait", "15", "incr", name], capture_output=True, text=True, env=env
            )
            assert incr.returncode == 0, incr.stderr
            assert ready_count() == 3
            children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
            assert orphans(children) == []
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_restart_with_a_broken_mongrel2_config_is_refused_and_keeps_serving(base):
    with demo(base, workers=1) as (stack, port):
        wait_serving(stack, port, workers=1)
        (m2pid,) = stack.pids("mongrel2")
        conf = base / "mongrel2.conf"
        good = conf.read_text()
        conf.write_text(good.replace("servers = [main]", "servers = [main,]"))
        refused = stack.ctl("restart", "mongrel2")
        assert refused.returncode == 1
        assert "mongrel2: watchers.mongrel2.config:" in refused.stderr
        assert stack.pids("mongrel2") == [m2pid]
        assert get(port) == (200, b"Hello, world!\n")
        conf.write_text(good)
        assert stack.ctl("--wait", "15", "restart", "mongrel2").returncode == 0
        assert stack.pids("mongrel2") not in ([], [m2pid])
        assert get(port) == (200, b"Hello, world!\n")


def test_stack_uploads_to_two_workers_behind_the_relay_are_served_whole(base):
    """A plain stack-file command (no --worker-slot): the relay keeps an upload's start and
    done messages on the worker that took the connection, so each is served whole."""

    port = free_port()
    handler = HandlerSpec(route="/", protocol="tnetstring")
    conf = base / "mongrel2.conf"
    conf.write_text(make_conf(port, [handler]))
    relay = f"ipc://{base / 'relay.ipc'}"
    text = f"""
[watchers.mongrel2]
type = "mongrel2"
config = "{conf}"
working_dir = "{base}"

[watchers.relay]
cmd = "$(python) -m m2bridge relay --send-spec {handler.send_spec} --bind {relay}"
priority = 5

[watchers.hello]
cmd = "$(python) -m m2bridge serve handlers.upload:app --config {conf} --handler / --relay {relay}"
numprocesses = 2
readiness = "stats"
"""
    body = bytes(range(256)) * 400  # over limits.content_length: the temp-file path
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: len(stack.pids("hello")) == 2, timeout=20)
        stack.wait_until(lambda: get(port)[0] == 200, timeout=20)
        answers = []
        for _ in range(6):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/up", body=body)
            response = conn.getresponse()
            answers.append((response.status, response.read()))
            conn.close()
        assert [status for status, _ in answers] == [200] * 6, answers
        digest = hashlib.sha256(body).hexdigest()
        assert all(json.loads(answer)["sha256"] == digest for _, answer in answers)


def test_up_refuses_two_workers_straight_on_mongrel2_naming_the_watcher(base):
    text, _ = mongrel2_stack(base, workers=2, relay=False)
    result = run_up(base, text)
    assert result.returncode == 1
    assert "watchers.hello.numprocesses: 2 'm2bridge serve' processes" in result.stderr
    assert "docs/decisions/0001-multi-worker-topology.md" in result.stderr


def test_one_worker_straight_on_mongrel2_serves_and_incr_is_refused(base):
    text, port = mongrel2_stack(base, workers=1, relay=False)
    with running_stack(base, text) as stack:
        wait_serving(stack, port, workers=1)
        refused = stack.ctl("incr", "hello")
        assert refused.returncode != 0
        assert "hello: 2 'm2bridge serve' processes connected straight to Mongrel2" in (
            refused.stderr
        )
        assert stack.status("hello")["numprocesses"] == 1
        assert get(port) == (200, b"Hello, world!\n")
