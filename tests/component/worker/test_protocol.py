"""Worker protocol features against FakeMongrel2: overload 503s, download credits, timeouts."""

from __future__ import annotations

import hashlib
import json

from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

MUX = f"{APPS}.mux:app"


def test_requests_past_the_in_flight_bound_get_503_with_retry_after(tmp_path, fake):
    extra = ["--max-in-flight", "2", "--cancel-grace", "0"]
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec], extra) as worker:
        slow = [fake.request("/sleepy/", query="seconds=1") for _ in range(2)]
        assert wait_until(lambda: worker.stats().get("in_flight") == 2)
        refused = fake.request("/hello/")
        response = fake.response(refused, until_close=True, timeout=2)
        assert response.status == 503
        assert response.header("Retry-After") == "1"
        assert all(fake.response(conn_id).status == 200 for conn_id in slow)
        assert fake.response(fake.request("/hello/")).status == 200
        assert wait_until(lambda: worker.stats().get("rejected") == 1), worker.stats()


def test_timeout_is_counted_in_stats(tmp_path, fake):
    extra = ["--timeout", "0.3"]
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec], extra) as worker:
        conn_id = fake.request("/sleepy/", query="seconds=5")
        assert fake.response(conn_id, until_close=True).status == 504
        assert wait_until(lambda: worker.stats().get("timed_out") == 1), worker.stats()


def test_download_credits_hold_the_response_until_the_client_reads(tmp_path, fake):
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec]):
        conn_id = fake.request("/big/", query="bytes=5000", headers={"DOWNLOAD_CREDITS": "1000"})
        assert fake.wait_for(lambda: len(fake.pending_bytes(conn_id)) == 1000, 5)
        # A later round trip: bytes sent past the credits would have come before its reply.
        assert fake.response(fake.request("/hello/")).status == 200
        assert len(fake.pending_bytes(conn_id)) == 1000  # nothing beyond the credits
        received = 1000
        while received < 5118:  # 5000 body bytes + the header block, 1000 per credit notice
            fake.credits(conn_id, 1000)  # like Mongrel2: credit exactly what was written
            received = min(received + 1000, 5118)
            assert fake.wait_for(lambda n=received: len(fake.pending_bytes(conn_id)) == n, 5)
        response = fake.response(conn_id)
        assert response.status == 200
        assert len(response.body) == 5000


def test_without_download_credits_the_response_leaves_at_once(tmp_path, fake):
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec]):
        response = fake.response(fake.request("/big/", query="bytes=300000"))
        assert len(response.body) == 300000


def test_streamed_upload_grants_credits_and_reads_the_pieces(tmp_path, fake):
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec]) as worker:
        conn_id = fake.request(
            "/upload/",
            method="POST",
            body=b"abc",
            headers={"UPLOAD_STREAM": "0", "content-length": "7"},
        )
        assert fake.wait_for(lambda: fake.controls(conn_id) == [{"credits": 65536}], 5)
        assert wait_until(lambda: worker.stats().get("in_flight") == 1)  # reading, body not in
        fake.upload_chunk(conn_id, "/upload/", 3, b"def", done=False)
        fake.upload_chunk(conn_id, "/upload/", 6, b"g", done=True)
        response = fake.response(conn_id)
        assert response.status == 200
        result = json.loads(response.body)
        assert result["size"] == 7
        assert result["sha256"] == hashlib.sha256(b"abcdefg").hexdigest()


def test_a_stream_piece_of_no_request_is_dropped_without_a_reply(tmp_path, fake):
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec]):
        fake.upload_chunk(99, "/upload/", 0, b"stray", done=True)
        assert fake.response(fake.request("/hello/")).status == 200
        assert fake.message_count(99) == 0


def test_a_connection_first_seen_without_credits_gets_a_window_on_a_flow_server(tmp_path, fake):
    # The held request never gets its credits: a short graceful timeout lets the worker exit.
    extra = ["--graceful-timeout", "1"]
    with run_worker(tmp_path / "w", MUX, [fake.send_spec], [fake.recv_spec], extra):
        first = fake.request("/hello/", headers={"DOWNLOAD_CREDITS": "102400"})
        assert fake.response(first).status == 200
        later = fake.request("/big/", query="bytes=300000")  # its first request went elsewhere
        assert fake.wait_for(lambda: len(fake.pending_bytes(later)) == 102400, 5)
        # A later round trip: bytes sent past the window would have come before its reply.
        assert fake.response(fake.request("/hello/")).status == 200
        assert len(fake.pending_bytes(later)) == 102400  # held at one window
        sizes = [len(r.body) for r in fake.replies if later in r.conn_ids]
        assert max(sizes) <= 65536
