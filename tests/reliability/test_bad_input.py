"""Hostile requests and misbehaving apps through the real Mongrel2: every request gets an
answer (4xx/5xx or a close, never a hang), and the same worker keeps serving afterwards."""

from __future__ import annotations

import http.client
import logging
import time

import pytest

from tests.helpers.http import exchange, get, status_of
from tests.helpers.load import stack_with_apps

log = logging.getLogger(__name__)
APP = "tests.reliability.apps:router --timeout 1"
HOST = b"Host: localhost\r\n"

HOSTILE = {
    "NUL in a header": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "CR inside a header": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rInjected: 1\r\n\r\n",
    "LF-only line ends": b"GET / HTTP/1.1\n" + HOST.replace(b"\r\n", b"\n") + b"\n",
    "100 KB header": b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "3000 headers": b"GET / HTTP/1.1\r\n"
    + HOST
    + b"".join(b"X-H%d: v\r\n" % i for i in range(3000))
    + b"\r\n",
    "huge Content-Length": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Content-Length: "
    + b"9" * 31
    + b"\r\n\r\nabc",
    "negative Content-Length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -5\r\n\r\nabc",
    "invalid UTF-8 path": b"GET /\xff\xfe%ff%c3%28 HTTP/1.1\r\n" + HOST + b"\r\n",
    "path traversal": b"GET /../../../etc/passwd HTTP/1.1\r\n" + HOST + b"\r\n",
    "encoded NUL in path": b"GET /a%00b HTTP/1.1\r\n" + HOST + b"\r\n",
    "forged upload outside the chroot": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"X-Mongrel2-Upload-Start: ../../../../etc/passwd\r\n"
    + b"X-Mongrel2-Upload-Done: ../../../../etc/passwd\r\nContent-Length: 3\r\n\r\nabc",
    "binary garbage": bytes(range(256)) * 4 + b"\r\n\r\n",
}


def test_hostile_requests_are_answered_or_closed_and_the_worker_keeps_serving(base):
    with stack_with_apps(base, APP, 1) as (stack, port):
        worker = stack.pids("hello")
        outcomes = {}
        for name, raw in HOSTILE.items():
            started = time.monotonic()
            reply = exchange(port, raw)
            outcomes[name] = (status_of(reply), round(time.monotonic() - started, 2))
            assert get(port) == (200, b"ok\n"), name  # still serving after each
        log.warning("hostile inputs (status, seconds): %s", outcomes)
        assert all(seconds < 5 for _, seconds in outcomes.values()), outcomes  # no hang
        assert outcomes["forged upload outside the chroot"][0] in (400, None)
        assert b"root:" not in exchange(port, HOSTILE["forged upload outside the chroot"])
        assert stack.pids("hello") == worker  # the same worker, never restarted
        assert "Traceback" not in stack.log()


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("no_start_response", 500),
        ("start_response_twice", 500),
        ("returns_str", 500),
        # 200 was sent with the body before close() failed: the stream is aborted (no final
        # chunk), so the client learns the response is broken.
        ("raises_in_close", "aborted"),
        ("hangs", 504),  # cancelled by --timeout 1
    ],
)
def test_misbehaving_app_is_answered_and_the_worker_keeps_serving(base, route, expected):
    with stack_with_apps(base, APP, 1) as (stack, port):
        worker = stack.pids("hello")
        started = time.monotonic()
        try:
            status: int | str = get(port, f"/{route}", timeout=5)[0]
        except http.client.IncompleteRead:
            status = "aborted"
        took = time.monotonic() - started
        log.warning("%s: %s in %.2f s", route, status, took)
        assert status == expected
        assert took < 2.0
        for _ in range(20):
            assert get(port) == (200, b"ok\n")
        assert stack.pids("hello") == worker
