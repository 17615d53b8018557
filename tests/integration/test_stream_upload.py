"""upload.stream=1 through the real Mongrel2 1.12.2: wsgi.input reads the body as it arrives.

What 1.12.2 does (re-checked here): a body over ``limits.content_length`` (or any chunked body)
arrives as a first message with ``UPLOAD_STREAM: 0`` and the bytes already read; nothing more
comes until the handler grants credits with an extended ``ctl`` reply; then pieces of at most
20480 bytes each carry ``UPLOAD_STREAM: <offset>``, the last one ``UPLOAD_STREAM_DONE``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time

from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, run_worker

APP = f"{APPS}.protocol:app"
STREAM = {"upload.stream": 1}


def expected(body):
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()


def test_streamed_bodies_reach_the_app_whole(tmp_path):
    handler = HandlerSpec(route="/", protocol="tnetstring")
    body = os.urandom(3 << 20)
    with (
        run_mongrel2(tmp_path / "m2", [handler], settings=STREAM) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec]) as worker,
    ):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
        conn.request("POST", "/read", body=body, headers={"Content-Length": str(len(body))})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, expected(body))
        chunks = [b"hello", b" world" * 5000]
        conn.request("POST", "/read", body=iter(chunks), encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, expected(b"".join(chunks)))
        conn.close()
        assert worker.stats().get("errors") == 0


def test_the_app_reads_while_the_body_still_arrives(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    body = os.urandom(200000)
    head = b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with (
        run_mongrel2(tmp_path / "m2", [handler], settings=STREAM) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec]) as worker,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(head + body[:50000])
        assert wait_until(lambda: worker.stats().get("in_flight") == 1), worker.stats()
        time.sleep(0.3)
        assert worker.stats().get("in_flight") == 1  # still reading: half the body is missing
        sock.sendall(body[50000:])
        reply = b""
        while not reply.endswith(b"\n") or b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert reply.endswith(expected(body))


def test_client_leaving_mid_upload_frees_the_request(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    head = b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
    with (
        run_mongrel2(tmp_path / "m2", [handler], settings=STREAM) as server,
        run_worker(tmp_path / "w", APP, [handler.send_spec], [handler.recv_spec],
                   ["--cancel-grace", "0.2"]) as worker,
    ):  # fmt: skip
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head + b"x" * 30000)
            assert wait_until(lambda: worker.stats().get("in_flight") == 1), worker.stats()
        assert wait_until(lambda: worker.stats().get("in_flight") == 0), worker.stats()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/hello")
        assert conn.getresponse().status == 200
        conn.close()
