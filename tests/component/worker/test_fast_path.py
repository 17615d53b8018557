"""The worker's fast path against its reference path, in this process with gevent.

The same messages go through a ``Dispatcher`` with the fast path and one without it (the
reference: ``parse_message``, ``build_environ``, ``run_wsgi``); every reply message (the Date
line aside), every environ the app saw, the counters and the access log lines must be equal.
The corpus is every captured request times apps that cover lists, streams, ``write``, errors,
HEAD and ``--script-name``. Then the cases the fast path must keep: pipelining on a busy
connection, a disconnect cancelling the running request, ``--timeout``'s 504,
``--max-in-flight``'s 503 and ``--max-requests`` counting.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import pytest
from gevent.pool import Pool

from m2bridge._types import Environ, StartResponse, WSGIApp
from m2bridge.config import WorkerConfig
from m2bridge.logs import AccessLog
from m2bridge.testing import make_disconnect_frame, make_request_frame, parse_reply
from m2bridge.wire import protocol
from m2bridge.worker import dispatch
from m2bridge.worker.connection import ConnectionTable
from m2bridge.worker.dispatch import Dispatcher
from m2bridge.worker.stats import WorkerStats
from tests.helpers.messages import CORPUS, MESSAGES
from tests.helpers.sink import NotRelayed
from tests.helpers.waiting import wait_until

DATE_RE = re.compile(rb"Date: [^\r]*\r\n")
CLOSED = b"<closed>"
ACCESS_TIME_RE = re.compile(r"\[[^]]*\]| [0-9.]+ms")


class ListChannel(NotRelayed):
    """A channel that records what each connection was sent, as one byte stream.

    How the bytes of a streamed response are split into messages depends on timing (pacing
    merges what comes faster than ``MERGE_INTERVAL``), so the stream is what is compared; a
    close (the empty reply) shows as ``CLOSED``.
    """

    index = 0
    recv_spec = "ipc://fast-path-test"
    reply_ident = None

    def __init__(self) -> None:
        self.sent: dict[int, bytes] = {}

    def send(self, message: bytes) -> None:
        reply = parse_reply(message)
        body = reply.body or CLOSED
        for conn_id in reply.conn_ids:
            self.sent[conn_id] = DATE_RE.sub(b"", self.sent.get(conn_id, b"") + body)


class Recorder:
    """Wraps an app and keeps what it saw of each environ (the body read, events by type)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen: dict[str, Any] = {key: type(value).__name__ for key, value in environ.items()}
        seen.update({k: v for k, v in environ.items() if isinstance(v, str | int | bool | tuple)})
        seen["wsgi.input"] = environ["wsgi.input"].read()
        self.seen.append(seen)
        return self.app(environ, start_response)


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\n"]


def echo_path(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}|{environ['QUERY_STRING']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def streamed(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first "
    gevent.sleep(0)
    yield b"second"


def writer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])(b"written")
    return []


def broken(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("the app is broken")


def bad_header(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("X-Bad", "a\nb")])
    return [b"never"]


APPS: list[WSGIApp] = [hello, echo_path, streamed, writer, broken, bad_header]


def serve(
    frames: list[bytes],
    app: WSGIApp,
    *,
    fast: bool,
    between: Callable[[], None] = lambda: None,
    **options: Any,
) -> tuple[dict[int, bytes], list[dict[str, Any]], WorkerStats, list[str]]:
    """Dispatch ``frames`` in one worker; return replies, environs, counters, access log lines."""
    config = WorkerConfig(app="test:app", **options)
    recorder = Recorder(app)
    stats = WorkerStats()
    table = ConnectionTable(Pool(config.concurrency))
    log = io.StringIO()
    dispatcher = Dispatcher(recorder, config, table, stats, AccessLog(log), fast=fast)
    channel = ListChannel()

    def run() -> None:
        for frame in frames:
            dispatcher.dispatch(channel, frame)
            between()
        assert wait_until(lambda: len(table) == 0, 5, interval=0.001, sleep=gevent.sleep)

    gevent.spawn(run).get(timeout=10)
    lines = [ACCESS_TIME_RE.sub("", line) for line in log.getvalue().splitlines()]
    return channel.sent, recorder.seen, stats, lines


def counters(stats: WorkerStats) -> tuple[int, ...]:
    histograms = (sum(stats.queue_time.counts), sum(stats.app_time.counts))
    return stats.served, stats.errors, stats.rejected, stats.timed_out, stats.in_flight, *histograms


def assert_same(frames: list[bytes], app: WSGIApp, **options: Any) -> dict[int, bytes]:
    fast = serve(frames, app, fast=True, **options)
    reference = serve(frames, app, fast=False, **options)
    assert fast[0] == reference[0]
    assert fast[1] == reference[1]
    assert counters(fast[2]) == counters(reference[2])
    assert fast[3] == reference[3]
    return fast[0]


@pytest.mark.parametrize("script_name", ["", "/tnet", "route"])
@pytest.mark.parametrize("app", APPS, ids=lambda app: app.__name__)
def test_every_capture_gets_the_same_replies_and_environ_on_both_paths(
    app: WSGIApp, script_name: str
) -> None:
    replies = assert_same(MESSAGES, app, script_name=script_name)
    assert replies  # the corpus has requests: something was answered


def test_the_fast_path_serves_plain_requests_without_the_reference_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[bytes] = []
    reference_parse = protocol.parse_message

    def counting(frame: bytes) -> Any:
        parsed.append(frame)
        return reference_parse(frame)

    monkeypatch.setattr(dispatch, "parse_message", counting)
    plain = [(CORPUS / name).read_bytes() for name in ("get_query.tnet", "post_form.json")]
    disconnect = make_disconnect_frame(conn_id=99)
    replies, *_ = serve([*plain, disconnect], hello, fast=True)
    assert parsed == [disconnect]
    assert len(replies) == 2


def test_requests_pipelined_on_a_busy_connection_are_answered_in_order() -> None:
    frames = [make_request_frame(f"/{n}", conn_id=7) for n in range(5)]
    replies = assert_same(frames, streamed)
    assert replies[7].count(b"HTTP/1.1 200 OK") == 5
    assert replies[7].count(b"6\r\nsecond\r\n0\r\n\r\n") == 5  # each stream complete


def test_a_disconnect_cancels_a_request_taken_by_the_fast_path() -> None:
    cancelled: list[str] = []

    def waits(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            gevent.sleep(5)
        except gevent.GreenletExit:
            cancelled.append(environ["PATH_INFO"])
            raise
        start_response("200 OK", [])
        return [b"too late"]

    frames = [make_request_frame("/wait", conn_id=3), make_disconnect_frame(conn_id=3)]
    replies, _, stats, _ = serve(frames, waits, fast=True, between=lambda: gevent.sleep(0.01))
    assert cancelled == ["/wait"]
    assert replies == {}
    assert stats.in_flight == 0


def test_timeout_answers_504_on_the_fast_path_as_on_the_reference_path() -> None:
    def slow(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        gevent.sleep(1)
        start_response("200 OK", [])
        return [b"too late"]

    replies = assert_same([make_request_frame("/slow", conn_id=4)], slow, timeout=0.05)
    assert replies[4].startswith(b"HTTP/1.1 504 Gateway Timeout")
    assert replies[4].endswith(CLOSED)


def test_max_in_flight_refuses_with_503_on_both_paths_alike() -> None:
    def waits(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        gevent.sleep(0.05)
        start_response("200 OK", [])
        return [b"done"]

    frames = [make_request_frame("/", conn_id=n) for n in range(1, 5)]
    replies = assert_same(frames, waits, max_in_flight=2)
    assert sum(b"503 Service Unavailable" in reply for reply in replies.values()) == 2


def test_each_request_taken_counts_toward_max_requests() -> None:
    counted: list[int] = []
    config = WorkerConfig(app="test:app")
    table = ConnectionTable(Pool(10))
    dispatcher = Dispatcher(
        hello, config, table, WorkerStats(), on_request=lambda: counted.append(1)
    )
    channel = ListChannel()

    def run() -> None:
        for conn_id in range(1, 4):
            dispatcher.dispatch(channel, make_request_frame("/", conn_id=conn_id))
        assert wait_until(lambda: len(table) == 0, 5, interval=0.001, sleep=gevent.sleep)

    gevent.spawn(run).get(timeout=10)
    assert len(counted) == 3
    assert len(channel.sent) == 3


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_each_request_is_counted_once_in_both_duration_histograms(fast: bool) -> None:
    frames = [make_request_frame(f"/{n}", conn_id=n) for n in range(5)]
    *_, stats, _ = serve(frames, hello, fast=fast)
    assert (sum(stats.queue_time.counts), sum(stats.app_time.counts)) == (5, 5)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_a_request_queued_behind_a_slow_one_counts_its_wait_as_queue_time(fast: bool) -> None:
    def slow(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        gevent.sleep(0.05)
        start_response("200 OK", [("Content-Length", "0")])
        return []

    frames = [make_request_frame(f"/{n}", conn_id=7) for n in range(2)]
    *_, stats, _ = serve(frames, slow, fast=fast)
    assert stats.queue_time.sum >= 0.045  # the second waited for the first
    assert stats.app_time.sum >= 0.09  # two apps of 0.05 s
