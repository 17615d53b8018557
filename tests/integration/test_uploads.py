"""Large and chunked request bodies through Mongrel2's async upload path (upload.temp_store).

Mongrel2 writes such bodies to ``<chroot>/tmp/upload.XXXXXX`` and announces them twice; the
worker serves the ``done`` message with the file as ``wsgi.input`` and deletes it afterwards.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket

import pytest

from tests.helpers.uploads import leftovers, post, upload_stack, wait_no_leftovers, wait_upload_file


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    with upload_stack(tmp_path_factory.mktemp("uploads")) as running:
        yield running


@pytest.fixture
def server(uploads):
    return uploads.server


@pytest.fixture
def temp_dir(uploads):
    return uploads.temp_dir


def test_ten_megabyte_upload_is_read_from_the_temp_file_then_deleted(server, temp_dir):
    data = os.urandom(10 * 1024 * 1024)
    status, body = post(server, "/upload/", data)
    assert status == 200, body
    assert json.loads(body) == {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": str(len(data)),
    }
    assert wait_no_leftovers(temp_dir) == []


def test_chunked_upload_arrives_dechunked_with_its_real_length(server, temp_dir):
    # Mongrel2 1.12.2 drops the connection for a chunk of 128 KiB or more ("Chunk too large").
    parts = [os.urandom(size) for size in (1, 5000, 70000, 3, *[100000] * 10, 17)]
    data = b"".join(parts)
    status, body = post(server, "/upload/", iter(parts),
                        headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)  # fmt: skip
    assert status == 200, body
    document = json.loads(body)
    assert document["size"] == len(data)
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["content_length"] == str(len(data))
    assert wait_no_leftovers(temp_dir) == []


def test_small_body_stays_inline(server, temp_dir):
    data = b"x" * 20000
    status, body = post(server, "/upload/", data)
    assert status == 200
    assert json.loads(body)["size"] == len(data)
    assert leftovers(temp_dir) == []


def test_several_uploads_on_one_keep_alive_connection(server, temp_dir):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for size in (30000, 100000, 25000):
        data = os.urandom(size)
        conn.request("POST", "/upload/", body=data)
        response = conn.getresponse()
        assert json.loads(response.read())["sha256"] == hashlib.sha256(data).hexdigest()
    conn.close()
    assert wait_no_leftovers(temp_dir) == []


def test_forged_upload_done_never_opens_the_file(server, temp_dir):
    victim = temp_dir / "upload.victim"
    victim.write_bytes(b"someone else's upload")
    status, body = post(server, "/upload/", b"tiny",
                        headers={"X-Mongrel2-Upload-Done": "/tmp/upload.victim"})  # fmt: skip
    assert status == 400
    assert b"someone else" not in body
    assert victim.read_bytes() == b"someone else's upload"
    victim.unlink()


def test_client_leaving_mid_upload_leaves_no_temp_file(server, temp_dir, uploads):
    # Measured: Mongrel2 deletes the file of an upload that fails half-way itself (it only
    # keeps completed ones); the worker gets start + disconnect and its cleanup must cope.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        sock.sendall(b"z" * 1_000_000)
        wait_upload_file(temp_dir)
    assert wait_no_leftovers(temp_dir) == []
    status, _ = post(server, "/upload/", b"still serving")
    assert status == 200
    assert "not removing upload" not in uploads.worker.log()


def test_oversized_upload_gets_its_declared_bytes_and_the_pipelined_request_a_closed_connection(
    server, temp_dir
):
    # Mongrel2 writes the GET pipelined behind a body over limits.content_length into the
    # upload's temp file and never parses it: the app must see only the declared 150002 bytes,
    # and the connection must close after the answer so the client resends the GET.
    form = b"a=" + b"x" * 150000
    pipelined = b"GET /get?n=2 HTTP/1.1\r\nHost: localhost\r\n\r\n"
    head = b"POST /upload/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(form)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(head + form + pipelined)
        received = b""
        while chunk := client.recv(65536):  # ends at EOF: the server closed the connection
            received += chunk
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    assert head_bytes.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nConnection: close" in head_bytes
    assert json.loads(body) == {
        "size": len(form),
        "sha256": hashlib.sha256(form).hexdigest(),
        "content_length": str(len(form)),
    }
    assert wait_no_leftovers(temp_dir) == []
