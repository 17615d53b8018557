"""HTTP clients -> the real Mongrel2 -> one m2bridge worker (with --validate) -> back.

One mongrel2 and one worker for the module. The worker serves two Mongrel2 handlers at once:
``/`` with JSON headers and ``/tnet/`` with tnetstring headers (``--script-name route``).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from handlers.stream import chunk
from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2
from tests.helpers.worker import APPS, run_worker

MUX = f"{APPS}.mux:app"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    handlers = [
        HandlerSpec(route="/", protocol="json"),
        HandlerSpec(route="/tnet/", protocol="tnetstring"),
        HandlerSpec(route="/late/", protocol="json"),  # no worker until a test starts one
    ]
    served = handlers[:2]
    extra = ["--script-name", "route", "--m2-chroot", str(root / "m2"), "--timeout", "10"]
    with (
        run_mongrel2(root / "m2", handlers) as server,
        run_worker(root / "w", MUX, [h.send_spec for h in served], [h.recv_spec for h in served],
                   extra) as worker,
    ):  # fmt: skip
        yield server, worker, handlers
    assert worker.proc.returncode == 0, worker.log()


@pytest.fixture
def server(stack):
    return stack[0]


def connect(server, timeout=10.0):
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


def get(server, path, method="GET", body=None, headers=None):
    conn = connect(server)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def echo_environ(server, path, **kwargs):
    status, _, body = get(server, path, **kwargs)
    assert status == 200, body
    return json.loads(body)


def raw_exchange(server, data, timeout=10.0):
    """Send raw bytes; read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while part := sock.recv(65536):
            chunks.append(part)
        return b"".join(chunks)


def test_query_string_and_unicode_path_reach_the_app(server):
    document = echo_environ(server, "/echo/caf%C3%A9/a%20b?q=%C3%A9&x=1&x=2")
    environ = document["environ"]
    assert environ["PATH_INFO"] == "/café/a b".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "q=%C3%A9&x=1&x=2"
    assert environ["REQUEST_URI"] == "/echo/caf%C3%A9/a%20b?q=%C3%A9&x=1&x=2"
    assert environ["SERVER_PORT"] == str(server.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "http"


def test_tnetstring_route_is_served_by_the_same_worker(server):
    environ = echo_environ(server, "/tnet/echo/x?y=1")["environ"]
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/tnet/echo", "/x")
    assert environ["QUERY_STRING"] == "y=1"


def test_form_post_body_and_content_type_reach_the_app(server):
    body = b"a=1&b=hello+world&c=%26"
    document = echo_environ(
        server, "/echo/form", method="POST", body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert document["body"].encode("latin-1") == body
    assert document["environ"]["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert document["environ"]["CONTENT_LENGTH"] == str(len(body))


def test_json_and_binary_bodies_are_byte_exact(server):
    payload = json.dumps({"x": [1, 2, "é"], "nul": "a\u0000b"}).encode() + bytes(range(256))
    document = echo_environ(
        server,
        "/echo/json",
        method="POST",
        body=payload,
        headers={"Content-Type": "application/json"},
    )
    assert document["body"].encode("latin-1") == payload


def test_repeated_cookie_headers_are_joined_with_semicolons(server):
    request = (
        b"GET /echo/c HTTP/1.1\r\nHost: localhost\r\nCookie: a=1\r\nCookie: b=2\r\n"
        b"X-Foo: one\r\nX-Foo: two\r\nConnection: close\r\n\r\n"
    )
    raw = raw_exchange(server, request)
    environ = json.loads(raw.split(b"\r\n\r\n", 1)[1])["environ"]
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_FOO"] == "one, two"


def test_head_has_no_body_and_keeps_the_connection_usable(server):
    conn = connect(server)
    conn.request("HEAD", "/hello/")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"")
    assert response.getheader("Content-Length") == "14"
    conn.request("GET", "/hello/")
    assert conn.getresponse().read() == b"Hello, world!\n"
    conn.close()


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = connect(server)
    conn.request("GET", "/hello/")
    conn.getresponse().read()
    first_socket = conn.sock
    for path in ("/echo/2", "/stream/?chunks=5", "/hello/"):
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        response.read()
    assert conn.sock is first_socket  # never reconnected
    conn.close()


def test_http10_client_gets_its_response_and_the_connection_closed(server):
    started = time.monotonic()
    raw = raw_exchange(server, b"GET /hello/ HTTP/1.0\r\n\r\n", timeout=5)
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\nHello, world!\n")
    assert b"Connection: close" in raw
    assert time.monotonic() - started < 2  # closed by us, not by Mongrel2's reaper


def test_connection_close_request_is_closed_after_the_response(server):
    raw = raw_exchange(server, b"GET /hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5)
    assert raw.endswith(b"Hello, world!\n")


def test_pipelined_requests_are_answered_in_order(server):
    requests = (b"GET /sleepy/?seconds=0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /echo/second HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
    raw = raw_exchange(server, requests)
    first = raw.index(b"slept 0.3")
    second = raw.index(b'"PATH_INFO": "/second"')
    third = raw.index(b"Hello, world!")
    assert first < second < third
    assert raw.count(b"HTTP/1.1 200 OK") == 3


def test_streamed_response_of_ten_thousand_tiny_chunks_arrives_whole(server):
    for _ in range(3):
        status, headers, body = get(server, "/stream/?chunks=10000")
        assert status == 200
        assert ("Transfer-Encoding", "chunked") in headers
        assert body == b"".join(chunk(i) for i in range(10000))


def test_streamed_response_yielding_between_chunks_arrives_whole(server):
    status, _, body = get(server, "/stream/?chunks=500&delay=0.001")
    assert status == 200
    assert body == b"".join(chunk(i) for i in range(500))


def test_five_megabyte_responses_arrive_whole(server):
    size = 5 * 1024 * 1024
    status, _, body = get(server, f"/big/?bytes={size}")
    assert (status, len(body)) == (200, size)
    assert body[:32] == b"0123456789abcdef" * 2
    status, _, body = get(server, "/stream/?chunks=80&size=65536")
    assert (status, len(body)) == (200, 80 * 65536)


def test_app_error_is_a_500_and_the_worker_keeps_serving(server, stack):
    conn = connect(server)
    conn.request("GET", "/crash/")
    response = conn.getresponse()
    assert (response.status, response.read()) == (500, b"Internal Server Error\n")
    conn.request("GET", "/hello/")  # same connection still usable
    assert conn.getresponse().status == 200
    conn.close()
    assert "crash inside the application" in stack[1].log()


def test_error_inside_a_streamed_body_cuts_the_response_and_closes(server):
    raw = raw_exchange(server, b"GET /crash/iter HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"first chunk" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # no clean end: the client knows it is cut


def test_hostile_headers_do_not_leak_into_the_environ(server):
    request = (b"GET /echo/h HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n"
               b"X-Latin: caf\xe9\r\nX-Tab: a\tb\r\nConnection: close\r\n\r\n")  # fmt: skip
    raw = raw_exchange(server, request)
    environ = json.loads(raw.split(b"\r\n\r\n", 1)[1])["environ"]
    assert environ["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"  # Mongrel2's, not the smuggled one
    assert environ["HTTP_X_LATIN"] == "caf\xe9"
    assert environ["HTTP_X_TAB"] == "a\tb"


def test_forged_upload_done_header_is_refused(server):
    raw = raw_exchange(
        server,
        b"GET /upload/ HTTP/1.1\r\nHost: x\r\nX-Mongrel2-Upload-Done: /etc/passwd\r\n\r\n",
        5,
    )
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"root:" not in raw


def test_expect_100_continue_is_answered_once_by_mongrel2(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        raw = b""
        while part := sock.recv(65536):
            raw += part
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["body"] == "hello"


def test_requests_queued_before_any_worker_connects_are_served_when_one_does(stack, tmp_path):
    server, _, handlers = stack
    late = handlers[2]
    results = []

    def fetch():
        results.append(get(server, "/late/hello/")[0])

    clients = [threading.Thread(target=fetch) for _ in range(5)]
    for client in clients:
        client.start()
    time.sleep(0.5)  # the requests now wait inside Mongrel2
    assert results == []
    with run_worker(tmp_path, MUX, [late.send_spec], [late.recv_spec],
                    ["--script-name", "route"]):  # fmt: skip
        for client in clients:
            client.join(10)
    assert results == [200] * 5
