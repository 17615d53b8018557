"""The fast path's response (m2bridge.wsgi.fast_response) against the reference path.

Each app of a corpus (plain lists, streams, ``write``, errors, bad statuses and headers, HEAD,
204/304, Content-Length mismatches, hop-by-hop headers...) runs once through ``run_wsgi`` with
a ``Response`` and once the fast way (``SimpleStart``, then ``reply`` or, when it declines,
``finish_wsgi``/``failed_wsgi`` with ``to_response()``), for each method, HTTP version and
keep-alive wish. The bytes sent, the close decision and the status must be the same.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2bridge._types import Environ, StartResponse, WSGIApp
from m2bridge.wsgi import fast_response, speedups
from m2bridge.wsgi.fast_response import SimpleStart, checked_head, render_reply
from m2bridge.wsgi.handler import failed_wsgi, finish_wsgi, run_wsgi
from m2bridge.wsgi.response import Response, ResponseError

SENDER = b"m2-handler"
CONN_ID = 42
DATE_RE = re.compile(rb"Date: [^\r]*\r\n")
TEXT = ("Content-Type", "text/plain")


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT, ("Content-Length", "6")])
    return [b"hello\n"]


def no_length(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    return [b"one ", b"two"]


def as_tuple(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("201 Created", [TEXT, ("X-Id", "7")])
    return (b"made",)


def empty(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    return []


def streamed(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    yield b"a"
    yield b""
    yield b"b"


def writer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    write = start_response("200 OK", [TEXT])
    write(b"written ")
    return [b"returned"]


def raises_first(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("before start_response")


def raises_after_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    raise RuntimeError("after start_response")


def bad_status(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("OK", [TEXT])
    return [b"never"]


def bad_header(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("X-Split", "a\r\nInjected: 1")])
    return [b"never"]


def not_a_list_of_headers(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", ((TEXT),))
    return [b"never"]


def unhashable_header(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [["X-List", "1"]])
    return [b"never"]


def twice(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    start_response("500 Oops", [TEXT])
    return [b"never"]


def recovers_with_exc_info(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    try:
        raise ValueError("caught by the app")
    except ValueError:
        start_response("503 Unavailable", [TEXT], sys.exc_info())
    return [b"sorry"]


def exc_info_first(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT], (None, None, None))
    return [b"fine"]


def short_length(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT, ("Content-Length", "10")])
    return [b"short"]


def long_length(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT, ("Content-Length", "2")])
    return [b"too long"]


def conflicting_lengths(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "1"), ("Content-Length", "2")])
    return [b"x"]


def no_content(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("204 No Content", [])
    return []


def not_modified(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("304 Not Modified", [("ETag", '"x"')])
    return [b"ignored"]


def informational(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("102 Processing", [])
    return []


def asks_to_close(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT, ("Connection", "close"), ("Transfer-Encoding", "chunked")])
    return [b"bye"]


def own_date(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), TEXT])
    return [b"dated"]


def latin1_reason(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 D\xe9j\xe0 vu", [("X-Name", "Andr\xe9")])
    return [b"ok"]


def str_items(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    return ["text"]  # type: ignore[list-item]


def bytes_result(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    return b"bytes"  # type: ignore[return-value]


def no_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return [b"nobody called start_response"]


class ListWithClose(list[bytes]):
    """A list subclass result: streamed by the reference path, closed once."""

    def close(self) -> None:
        self.append(b"closed")


def list_subclass(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    return ListWithClose([b"sub", b"class"])


class Closing:
    """An iterable whose close() must run on both paths."""

    closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b"closing"

    def close(self) -> None:
        Closing.closed += 1


def closing(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [TEXT])
    return Closing()


APPS: list[WSGIApp] = [
    *(hello, no_length, as_tuple, empty, streamed, writer, raises_first, raises_after_start),
    *(bad_status, bad_header, not_a_list_of_headers, unhashable_header, twice),
    *(recovers_with_exc_info, exc_info_first, short_length, long_length, conflicting_lengths),
    *(no_content, not_modified, informational, asks_to_close, own_date, latin1_reason),
    *(str_items, bytes_result, no_start, list_subclass, closing),
]
#: Apps whose outcome the fast path renders itself (the others go through ``to_response``).
RENDERED = {hello, no_length, as_tuple, empty, asks_to_close, own_date, latin1_reason}
REQUESTS = [
    ("GET", "HTTP/1.1", True),
    ("GET", "HTTP/1.1", False),
    ("GET", "HTTP/1.0", True),
    ("GET", "HTTP/1.0", False),
    ("HEAD", "HTTP/1.1", True),
    ("POST", "HTTP/1.0", True),
]
Outcome = tuple[bytes, bool, int | None]


def environ() -> Environ:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.input": io.BytesIO()}


def by_reference(app: WSGIApp, method: str, version: str, keep_alive: bool) -> Outcome:
    response = Response(method, version, keep_alive)
    sent = b"".join(run_wsgi(app, environ(), response))
    return DATE_RE.sub(b"", sent), response.should_close, response.status_code


def by_fast_path(app: WSGIApp, method: str, version: str, keep_alive: bool) -> Outcome:
    start = SimpleStart(method, version, keep_alive)
    env = environ()
    try:
        result = app(env, start)
    except Exception:
        pieces = failed_wsgi(env, start.to_response())
    else:
        reply = start.reply(result, SENDER, CONN_ID)
        if reply is not None:
            prefix = b"%s %d:%d, " % (SENDER, len(str(CONN_ID)), CONN_ID)
            message, close, code, body_length = reply
            assert message.startswith(prefix)
            http = message[len(prefix) :]
            assert body_length == len(http.partition(b"\r\n\r\n")[2])
            return DATE_RE.sub(b"", http), close, code
        pieces = finish_wsgi(result, env, start.to_response())
    response = start.to_response()
    sent = b"".join(pieces)
    return DATE_RE.sub(b"", sent), response.should_close, response.status_code


RENDERERS = {"pure": render_reply}
if speedups.compiled is not None:
    RENDERERS["compiled"] = speedups.compiled.render_reply


@pytest.fixture(params=sorted(RENDERERS))
def renderer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each implementation of the reply rendering in turn (the compiled one when built)."""
    name: str = request.param
    monkeypatch.setattr(fast_response, "_render_reply", RENDERERS[name])
    return name


@pytest.mark.usefixtures("renderer")
@pytest.mark.parametrize(("method", "version", "keep_alive"), REQUESTS)
@pytest.mark.parametrize("app", APPS, ids=lambda app: app.__name__)
def test_every_app_sends_the_same_bytes_on_both_paths(
    app: WSGIApp, method: str, version: str, keep_alive: bool
) -> None:
    assert by_fast_path(app, method, version, keep_alive) == by_reference(
        app, method, version, keep_alive
    )


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.__name__)
def test_the_fast_path_renders_exactly_the_simple_outcomes(app: WSGIApp) -> None:
    start = SimpleStart("GET", "HTTP/1.1", True)
    try:
        result = app(environ(), start)
    except Exception:
        result = None
    assert (start.reply(result, SENDER, CONN_ID) is not None) == (app in RENDERED)


@pytest.mark.parametrize(
    ("app", "date"), [(hello, None), (own_date, b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n")]
)
def test_the_rendered_reply_carries_one_date_the_apps_if_it_sent_one(
    app: WSGIApp, date: bytes | None
) -> None:
    start = SimpleStart("GET", "HTTP/1.1", True)
    reply = start.reply(app(environ(), start), SENDER, CONN_ID)
    assert reply is not None
    dates = DATE_RE.findall(reply[0])
    assert len(dates) == 1
    if date is not None:
        assert dates == [date]


@given(
    st.binary(min_size=1, max_size=40),
    st.integers(0, 2**70),
    *(st.binary(max_size=80) for _ in range(4)),
)
def test_both_renderers_build_the_same_reply(
    sender: bytes, conn_id: int, line: bytes, date: bytes, end: bytes, body: bytes
) -> None:
    expected = b"%s %d:%d, %s%sContent-Length: %d\r\n%s%s" % (
        sender, len(str(conn_id)), conn_id, line, date, len(body), end, body
    )  # fmt: skip
    assert render_reply(sender, conn_id, line, date, end, body) == expected
    if speedups.compiled is not None and conn_id < 2**64:
        assert speedups.compiled.render_reply(sender, conn_id, line, date, end, body) == expected


@pytest.mark.usefixtures("renderer")
def test_a_connection_id_past_64_bits_gets_its_reply_all_the_same() -> None:
    start = SimpleStart("GET", "HTTP/1.1", True)
    reply = start.reply(hello(environ(), start), SENDER, 2**70)
    assert reply is not None
    assert reply[0].startswith(b"%s 22:%d, HTTP/1.1 200 OK\r\n" % (SENDER, 2**70))


def test_a_close_iterable_is_closed_once_on_the_fast_path() -> None:
    before = Closing.closed
    by_fast_path(closing, "GET", "HTTP/1.1", True)
    assert Closing.closed == before + 1


def test_a_head_seen_before_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = [("X-Cached", "1")]
    first = checked_head("200 OK", headers)
    monkeypatch.setattr(fast_response, "check_status", None)  # would raise if called
    assert checked_head("200 OK", list(headers)) is first


def test_the_head_cache_is_cleared_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_response, "HEAD_CACHE_LIMIT", 3)
    monkeypatch.setattr(fast_response, "_HEADS", {})
    for number in range(10):
        checked_head("200 OK", [("X-N", str(number))])
        assert len(fast_response._HEADS) <= 3


def test_an_invalid_head_raises_the_reference_error_each_time() -> None:
    for _ in range(2):
        with pytest.raises(ResponseError, match="invalid status"):
            checked_head("OK", [])
