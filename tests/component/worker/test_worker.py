"""The worker process against FakeMongrel2 over ipc://: what it answers, and what it never does.

One worker (serving ``tests.integration.apps.mux``) and one fake per module keep this fast.
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import quote

import pytest

from handlers.stream import chunk
from m2bridge import zmqread
from m2bridge.testing import (
    FakeMongrel2,
    encode_message,
    make_disconnect_frame,
    make_json_frame,
    make_request_frame,
)
from m2bridge.wsgi import speedups
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

MUX = f"{APPS}.mux:app"
PROTOCOL = f"{APPS}.protocol:app"
TEMP_STORE = "/tmp/upload.XXXXXX"


@pytest.fixture(scope="module")
def chroot(tmp_path_factory):
    root = tmp_path_factory.mktemp("chroot")
    (root / "tmp").mkdir()
    return root


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeMongrel2(tmp_path_factory.mktemp("m2")) as fake:
        yield fake


@pytest.fixture(scope="module")
def worker(fake, chroot, tmp_path_factory):
    extra = [
        "--timeout",
        "1.5",
        "--cancel-grace",
        "0.2",
        "--m2-chroot",
        str(chroot),
        "--upload-temp-store",
        TEMP_STORE,
    ]
    with run_worker(
        tmp_path_factory.mktemp("w"), MUX, [fake.send_spec], [fake.recv_spec], extra
    ) as worker:
        yield worker
    assert worker.proc.returncode == 0, worker.log()


def echo(fake, conn_id, **kwargs):
    response = fake.response(conn_id, **kwargs)
    assert response.status == 200, response
    return json.loads(response.body)


def test_request_is_served_through_the_app(fake, worker):
    conn_id = fake.request("/echo/a%20b", query="q=1&r=%C3%A9", headers={"cookie": ["a=1", "b=2"]})
    environ = echo(fake, conn_id)["environ"]
    assert environ["SCRIPT_NAME"] == "/echo"
    assert environ["PATH_INFO"] == "/a b"
    assert environ["QUERY_STRING"] == "q=1&r=%C3%A9"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert not fake.is_closed(conn_id)  # HTTP/1.1 keep-alive: the connection stays open


def test_the_worker_logs_which_fast_path_helpers_it_runs(fake, worker):
    fake.response(fake.request("/echo/x"))  # started and serving
    assert f"{speedups.describe()}; {zmqread.describe()}" in worker.log()


def test_tnetstring_and_json_headers_serve_the_same_request(fake, worker):
    ids = []
    for protocol in ("json", "tnetstring"):
        conn_id = fake.next_conn_id()
        fake.send_frame(
            make_request_frame(
                "/echo/p", query="x=1", conn_id=conn_id, sender=fake.sender, protocol=protocol
            )
        )
        ids.append(conn_id)
    first, second = (echo(fake, conn_id)["environ"] for conn_id in ids)
    assert first.pop("m2bridge.conn_id") != second.pop("m2bridge.conn_id")
    assert first == second


def test_post_body_reaches_wsgi_input(fake, worker):
    body = bytes(range(256)) * 4
    conn_id = fake.request(
        "/echo/", method="POST", body=body, headers={"content-type": "application/octet-stream"}
    )
    document = echo(fake, conn_id)
    assert document["body"].encode("latin-1") == body
    assert document["environ"]["CONTENT_LENGTH"] == str(len(body))


def test_replies_use_the_request_sender_by_default(fake, worker):
    conn_id = fake.request("/hello/")
    fake.response(conn_id)
    assert {r.sender for r in fake.replies if conn_id in r.conn_ids} == {fake.sender}


def test_pipelined_requests_are_answered_in_order(fake, worker):
    conn_id = fake.next_conn_id()
    fake.request("/sleepy/", query="seconds=0.3", conn_id=conn_id)
    fake.request("/echo/second", conn_id=conn_id)
    fake.request("/hello/", conn_id=conn_id)
    assert fake.response(conn_id).body == b"slept 0.3\n"
    assert echo(fake, conn_id)["environ"]["PATH_INFO"] == "/second"
    assert fake.response(conn_id).body == b"Hello, world!\n"


def test_http10_request_is_answered_then_closed(fake, worker):
    conn_id = fake.request("/hello/", version="HTTP/1.0")
    response = fake.response(conn_id, until_close=True)
    assert (response.status, response.body) == (200, b"Hello, world!\n")
    assert response.header("Connection") == "close"


def test_connection_close_request_is_closed_after_the_response(fake, worker):
    conn_id = fake.request("/hello/", headers={"connection": "close"})
    assert fake.response(conn_id).status == 200
    assert fake.wait_closed(conn_id, timeout=5)


def test_notices_and_json_messages_are_never_answered(fake, worker):
    ids = [fake.next_conn_id() for _ in range(4)]
    fake.send_frame(make_disconnect_frame(ids[0], sender=fake.sender))
    fake.send_frame(
        make_json_frame(
            "@*",
            {"type": "credits"},
            conn_id=ids[1],
            sender=fake.sender,
            headers={"DOWNLOAD_CREDITS": "5041"},
        )
    )
    fake.send_frame(
        make_json_frame("@chat", {"type": "msg", "msg": "hi"}, conn_id=ids[2], sender=fake.sender)
    )
    fake.send_frame(
        make_request_frame(
            "/ws",
            conn_id=ids[3],
            sender=fake.sender,
            method="WEBSOCKET",
            headers={"FLAGS": "0x81"},
            body=b"hello ws",
        )
    )
    fake.send_frame(b"%s %d @* 0:,0:," % (fake.sender, ids[0]))  # malformed notice
    probe = fake.request("/hello/")  # handled after all of the above, its reply after theirs
    assert fake.response(probe).status == 200
    assert fake.message_count(probe) == 1  # the same count does see a reply when there is one
    assert [fake.message_count(conn_id) for conn_id in ids] == [0, 0, 0, 0]


def test_websocket_handshake_gets_501_and_close(fake, worker):
    conn_id = fake.request(
        "/ws",
        method="WEBSOCKET_HANDSHAKE",
        headers={"upgrade": "websocket"},
        body=b"BACScCJPNqyz+UBoqMH89VmURoA=",
    )
    response = fake.response(conn_id, until_close=True)
    assert response.status == 501


def test_malformed_message_gets_400_and_close_and_the_worker_keeps_serving(fake, worker):
    conn_id = fake.next_conn_id()
    fake.send_frame(b"%s %d /x 12:not a header,0:," % (fake.sender, conn_id))
    assert fake.response(conn_id, until_close=True).status == 400
    unreadable = b"garbage without structure"
    fake.send_frame(unreadable)
    assert fake.response(fake.request("/hello/")).status == 200
    assert "malformed message" in worker.log()


def test_invalid_utf8_json_headers_are_served(fake, worker):
    conn_id = fake.next_conn_id()
    headers = {
        "PATH": "/echo/",
        "METHOD": "GET",
        "VERSION": "HTTP/1.1",
        "URI": "/echo/",
        "x-latin": "caf\xe9",
        "x-tab": "a\tb",
    }
    fake.send_frame(encode_message(fake.sender, conn_id, "/echo/", headers, b""))
    environ = echo(fake, conn_id)["environ"]
    assert (environ["HTTP_X_LATIN"], environ["HTTP_X_TAB"]) == ("caf\xe9", "a\tb")


def test_app_errors_give_500_or_close_and_the_worker_survives(fake, worker):
    before = fake.request("/crash/")
    response = fake.response(before)
    assert response.status == 500
    cut = fake.request("/crash/iter")
    assert fake.wait_closed(cut, timeout=5)
    assert b"first chunk" in fake.pending_bytes(cut)
    closing = fake.request("/crash/close")
    assert fake.response(closing).body == b"complete body\n"
    assert fake.response(fake.request("/hello/")).status == 200


def test_many_slow_requests_run_concurrently(fake, worker):
    started = time.monotonic()
    ids = [fake.request("/sleepy/", query="seconds=0.5") for _ in range(100)]
    for conn_id in ids:
        assert fake.response(conn_id).status == 200
    assert time.monotonic() - started < 2.5  # one after another would take 50 s


def test_a_request_after_one_blocking_inline_is_answered_while_the_first_still_runs(fake, worker):
    # The first runs in the receiving greenlet (the fast path's inline execution); when it
    # blocks, another greenlet takes over receiving, so the second does not wait for it.
    slow = fake.request("/sleepy/", query="seconds=1")
    started = time.monotonic()
    assert fake.response(fake.request("/hello/")).status == 200
    assert time.monotonic() - started < 0.5
    assert fake.response(slow, timeout=3).body == b"slept 1.0\n"
    assert fake.response(fake.request("/hello/")).status == 200  # receiving goes on


def test_request_past_timeout_is_answered_504_and_closed(fake, worker):
    conn_id = fake.request("/sleepy/", query="seconds=5")
    started = time.monotonic()
    response = fake.response(conn_id, until_close=True)
    assert response.status == 504
    assert 1.2 < time.monotonic() - started < 3
    assert fake.response(fake.request("/hello/")).status == 200


def test_streamed_response_past_timeout_is_closed(fake, worker):
    conn_id = fake.request("/stream/", query="chunks=10&delay=0.4")
    assert fake.wait_closed(conn_id, timeout=5)
    data = fake.pending_bytes(conn_id)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert not data.endswith(b"0\r\n\r\n")  # never completed: the client sees a cut


def read_marker(path):
    return path.read_text() if path.exists() else ""


def test_disconnect_cancels_the_running_request_and_drops_the_queued_one(tmp_path):
    """``/cancellable`` writes ``disconnected`` when it sees the event, then ``cancelled`` only
    when ``GreenletExit`` is thrown into it: a request that merely finished writes no such line.
    """
    running, queued = tmp_path / "running.txt", tmp_path / "queued.txt"
    (tmp_path / "m2").mkdir()
    extra = ["--cancel-grace", "0.2"]
    with (
        FakeMongrel2(tmp_path / "m2") as fake,
        run_worker(tmp_path / "w", PROTOCOL, [fake.send_spec], [fake.recv_spec], extra) as worker,
    ):
        conn_id = fake.next_conn_id()
        fake.request("/cancellable", query=f"marker={quote(str(running))}", conn_id=conn_id)
        fake.request("/cancellable", query=f"marker={quote(str(queued))}", conn_id=conn_id)
        assert wait_until(lambda: worker.stats().get("in_flight") == 1), worker.stats()
        fake.disconnect(conn_id)
        assert wait_until(lambda: read_marker(running) == "disconnected\ncancelled\n"), (
            read_marker(running),
            worker.log(),
        )
        # Had the queued request been served, it would have run (and written its marker at
        # once, its client being gone) before this probe's reply left the worker.
        assert fake.response(fake.request("/hello")).body == b"hello\n"
        assert not queued.exists()
        assert fake.message_count(conn_id) == 0  # nothing, not even a close: the client is gone
        assert wait_until(lambda: worker.stats().get("in_flight") == 0), worker.stats()
    assert worker.proc.returncode == 0, worker.log()


def test_ten_thousand_tiny_chunks_are_merged_into_few_messages(fake, worker):
    conn_id = fake.request("/stream/", query="chunks=10000")
    response = fake.response(conn_id)
    assert response.body == b"".join(chunk(i) for i in range(10000))
    assert fake.message_count(conn_id) <= 16


def test_slow_stream_chunks_leave_without_waiting_for_the_end(fake, worker):
    conn_id = fake.request("/stream/", query="chunks=3&delay=0.4")
    assert fake.wait_for(lambda: b"0\n" in fake.pending_bytes(conn_id), timeout=5)
    first_seen = time.monotonic()
    assert fake.response(conn_id).body == b"0\n1\n2\n"
    assert time.monotonic() - first_seen > 0.6  # chunk 0 left two delays before the end


def upload_file(chroot, name, data):
    path = chroot / "tmp" / name
    path.write_bytes(data)
    return path, f"/tmp/{name}"


def test_async_upload_is_served_from_the_temp_file_then_deleted(fake, worker, chroot):
    data = bytes(range(256)) * 1000
    path, announced = upload_file(chroot, "upload.aB3xYz", data)
    conn_id = fake.next_conn_id()
    headers = {"content-length": str(len(data)), "x-mongrel2-upload-start": announced}
    fake.request("/upload/", method="POST", conn_id=conn_id, headers=headers)
    fake.request(
        "/upload/",
        method="POST",
        conn_id=conn_id,
        headers={**headers, "x-mongrel2-upload-done": announced},
    )
    document = json.loads(fake.response(conn_id).body)
    assert document == {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": str(len(data)),
    }
    assert fake.message_count(conn_id) == 1  # the start message got no reply
    assert wait_until(lambda: not path.exists())


def test_forged_upload_done_is_refused_and_the_file_never_opened(fake, worker, chroot):
    path, announced = upload_file(chroot, "upload.f0rGed", b"secret")
    conn_id = fake.request(
        "/upload/", method="POST", body=b"x", headers={"x-mongrel2-upload-done": announced}
    )
    assert fake.response(conn_id, until_close=True).status == 400
    assert path.read_bytes() == b"secret"
    assert "forged x-mongrel2-upload-done" in worker.log()


def test_forged_upload_start_is_refused(fake, worker, chroot):
    conn_id = fake.request(
        "/upload/",
        method="POST",
        body=b"inline body",
        headers={"x-mongrel2-upload-start": "/tmp/upload.whatev"},
    )
    assert fake.response(conn_id, until_close=True).status == 400


def test_upload_outside_the_temp_store_is_refused(fake, worker, chroot):
    (chroot / "etc").mkdir(exist_ok=True)
    secret = chroot / "etc" / "passwd"
    secret.write_text("root:x:0:0")
    conn_id = fake.next_conn_id()
    headers = {"content-length": "10", "x-mongrel2-upload-start": "/etc/passwd"}
    fake.request("/upload/", method="POST", conn_id=conn_id, headers=headers)
    fake.request(
        "/upload/",
        method="POST",
        conn_id=conn_id,
        headers={**headers, "x-mongrel2-upload-done": "/etc/passwd"},
    )
    assert fake.response(conn_id, until_close=True).status == 400
    assert secret.read_text() == "root:x:0:0"


def test_disconnect_during_an_upload_deletes_its_temp_file(fake, worker, chroot):
    path, announced = upload_file(chroot, "upload.hAlf00", b"partial")
    conn_id = fake.next_conn_id()
    fake.request(
        "/upload/",
        method="POST",
        conn_id=conn_id,
        headers={"transfer-encoding": "chunked", "x-mongrel2-upload-start": announced},
    )
    fake.disconnect(conn_id)
    fake.response(fake.request("/hello/"))  # both messages were handled
    assert not path.exists()
    assert fake.message_count(conn_id) == 0
