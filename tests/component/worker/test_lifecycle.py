"""Worker process lifecycle against FakeMongrel2: start-up, stop, restarts, counters, identities."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from m2bridge.testing import FakeMongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, REPO_ROOT, run_worker

MUX = f"{APPS}.mux:app"


def mkdir(path):
    path.mkdir()
    return path


def serve(tmp_path, fake, *extra, **kwargs):
    return run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec], extra, **kwargs)


def test_sigterm_lets_requests_in_flight_finish_then_exits_0(tmp_path, fake):
    with serve(tmp_path, fake, "--graceful-timeout", "5") as worker:
        conn_id = fake.request("/sleepy/", query="seconds=0.5")
        assert wait_until(lambda: worker.stats().get("in_flight") == 1), worker.stats()
        worker.stop(signal.SIGTERM)
        assert worker.proc.returncode == 0, worker.log()
        assert fake.response(conn_id, timeout=1).body == b"slept 0.5\n"
        with pytest.raises(TimeoutError):
            fake.send_frame(b"x", timeout=0.3)  # nobody takes requests any more


def test_sigint_stops_the_worker_like_sigterm(tmp_path, fake):
    with serve(tmp_path, fake) as worker:
        fake.response(fake.request("/hello/"))
        assert worker.stop(signal.SIGINT) == 0


def test_graceful_timeout_cancels_slow_requests_and_closes_their_clients(tmp_path, fake):
    with serve(tmp_path, fake, "--graceful-timeout", "0.3") as worker:
        conn_id = fake.request("/sleepy/", query="seconds=20")
        assert wait_until(lambda: worker.stats().get("in_flight") == 1), worker.stats()
        started = time.monotonic()
        assert worker.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 3
        assert fake.wait_closed(conn_id, timeout=1)  # not left hanging until Mongrel2's reaper
        assert fake.pending_bytes(conn_id) == b""


def test_max_requests_makes_the_worker_exit_after_that_many(tmp_path, fake):
    with serve(tmp_path, fake, "--max-requests", "3") as worker:
        for _ in range(3):
            assert fake.response(fake.request("/hello/")).status == 200
        assert worker.wait_exit(10) == 0
        assert "max-requests" in worker.log()
        assert worker.stats()["served"] == 3


def test_stats_file_counts_served_requests_and_errors(tmp_path, fake):
    with serve(tmp_path, fake) as worker:
        assert worker.stats()["served"] == 0
        for path in ("/hello/", "/echo/", "/crash/"):
            fake.response(fake.request(path))
        assert wait_until(lambda: worker.stats().get("served") == 3), worker.stats()
        stats = worker.stats()
        assert (stats["served"], stats["in_flight"], stats["errors"]) == (3, 0, 1)
        assert stats["pid"] == worker.pid
        assert stats["started_at"] <= time.time()


def test_access_log_has_one_line_per_request(tmp_path, fake):
    access = tmp_path / "access.log"
    with serve(tmp_path, fake, "--access-log", str(access)):
        fake.response(fake.request("/hello/", query="x=1"))
        fake.response(fake.request("/nothing"))
    lines = access.read_text().splitlines()
    assert len(lines) == 2
    assert re.match(r'127\.0\.0\.1 - - \[.+\] "GET /hello/\?x=1 HTTP/1\.1" 200 14 ', lines[0])
    assert re.search(r'"GET /nothing HTTP/1\.1" 404 12 "-" "-" [0-9.]+ms$', lines[1])


def test_no_access_log_by_default_and_no_per_request_info_lines(tmp_path, fake):
    with serve(tmp_path, fake) as worker:
        for _ in range(5):
            fake.response(fake.request("/hello/"))
        log_before_stop = worker.log()
    assert "GET /hello/" not in log_before_stop
    assert log_before_stop.count("\n") <= 3


def test_one_worker_serves_two_mongrel2s_replying_to_the_right_one(tmp_path):
    with (
        FakeMongrel2(mkdir(tmp_path / "a"), sender=b"server-a") as first,
        FakeMongrel2(mkdir(tmp_path / "b"), sender=b"server-b") as second,
        run_worker(tmp_path / "w", MUX, [first.send_spec, second.send_spec],
                   [first.recv_spec, second.recv_spec]),
    ):  # fmt: skip
        conn_a = first.request("/echo/a", conn_id=7)
        conn_b = second.request("/echo/b", conn_id=7)  # same id: another server
        path_a = json.loads(first.response(conn_a).body)["environ"]["PATH_INFO"]
        path_b = json.loads(second.response(conn_b).body)["environ"]["PATH_INFO"]
        assert (path_a, path_b) == ("/a", "/b")
        assert {r.sender for r in first.replies} == {b"server-a"}
        assert {r.sender for r in second.replies} == {b"server-b"}
        assert len(first.replies) == len(second.replies) == 1


def test_explicit_sender_id_starts_every_reply(tmp_path, fake):
    with serve(tmp_path, fake, "--sender-id", "my-handler-01"):
        fake.response(fake.request("/hello/"))
        assert {r.sender for r in fake.replies} == {b"my-handler-01"}


def test_recv_ident_mongrel2_subscribed_with_becomes_the_reply_identity(tmp_path):
    ident = b"54c6755b-9628-40a4-9a2d-cc82a816345e"
    with (
        FakeMongrel2(mkdir(tmp_path / "m2"), recv_ident=ident) as fake,
        serve(tmp_path, fake),
    ):
        response = fake.response(fake.request("/hello/"), timeout=5)
        assert response.status == 200  # a reply without the prefix would be filtered out
        assert {r.sender for r in fake.replies} == {ident}


def test_worker_waits_for_a_late_mongrel2_with_a_warning_then_serves(tmp_path):
    directory = mkdir(tmp_path / "m2")
    send_spec = f"ipc://{directory / 'm2-send.ipc'}"
    recv_spec = f"ipc://{directory / 'm2-recv.ipc'}"
    with run_worker(tmp_path / "w", MUX, [send_spec], [recv_spec], wait=False) as worker:
        assert wait_until(lambda: "waiting for Mongrel2 at " + recv_spec in worker.log()), (
            worker.log()
        )
        with FakeMongrel2(directory) as fake:
            assert fake.response(fake.request("/hello/")).status == 200


def test_worker_pauses_while_mongrel2_is_down_and_resumes_after_its_restart(tmp_path):
    directory = mkdir(tmp_path / "m2")
    with FakeMongrel2(directory) as fake, serve(tmp_path, fake) as worker:
        assert fake.response(fake.request("/hello/")).status == 200
        fake.close()
        assert wait_until(lambda: "went away; pausing" in worker.log()), worker.log()
        with FakeMongrel2(directory) as restarted:
            conn_id = restarted.request("/hello/", conn_id=1)  # ids start again after a restart
            assert restarted.response(conn_id).status == 200


def test_burst_of_requests_is_all_served(tmp_path, fake):
    with serve(tmp_path, fake, "--concurrency", "50"):
        ids = [fake.request("/hello/") for _ in range(300)]
        assert all(fake.response(conn_id).status == 200 for conn_id in ids)


def test_unimportable_app_exits_1_with_one_line_before_connecting(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "m2bridge", "serve", "no_such_module_x:app",
         "--send-spec", f"ipc://{tmp_path}/s", "--recv-spec", f"ipc://{tmp_path}/r"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "m2bridge serve: error: cannot import module 'no_such_module_x': "
        "No module named 'no_such_module_x'"
    ]


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("handlers.crash:nope", "module 'handlers.crash' has no attribute 'nope'"),
        (
            f"{APPS}.broken:app",
            f"importing '{APPS}.broken' raised RuntimeError('broken on purpose')",
        ),
        ("handlers.stream:MAX_SIZE", "handlers.stream:MAX_SIZE is not callable"),
    ],
)
def test_bad_app_is_a_one_line_error(app, message):
    result = subprocess.run(
        [sys.executable, "-m", "m2bridge", "serve", app],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"m2bridge serve: error: {message}"]
