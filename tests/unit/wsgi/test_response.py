"""Unit tests of wsgi.response: start_response rules, header safety and byte-exact framing."""

from __future__ import annotations

import email.utils
import io
import logging
import sys

import pytest

from m2bridge.errors import M2BridgeError
from m2bridge.wsgi import response as response_module
from m2bridge.wsgi.response import (
    FileWrapper,
    Response,
    ResponseError,
    http_date,
    keep_alive_requested,
    make_simple_response,
)

NOW = 1_700_000_000.0
DATE = b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
TEXT = [("Content-Type", "text/plain")]
CT = b"Content-Type: text/plain\r\n"


def new(method: str = "GET", version: str = "HTTP/1.1", keep_alive: bool = True) -> Response:
    return Response(method, version, keep_alive, now=lambda: NOW)


def started(
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    **kwargs: object,
) -> Response:
    response = new(**kwargs)  # type: ignore[arg-type]
    response.start_response(status, list(TEXT) if headers is None else headers)
    return response


def raised_exc_info() -> tuple[type[BaseException], BaseException, object]:
    try:
        raise KeyError("app failure")
    except KeyError:
        info = sys.exc_info()
    assert info[0] is not None
    assert info[1] is not None
    return info[0], info[1], info[2]


# ------------------------------------------------------------------ one-piece responses


def test_small_response_leaves_as_one_piece_with_content_length() -> None:
    response = started()
    assert response.finish(b"hello") == [
        b"HTTP/1.1 200 OK\r\n" + CT + DATE + b"Content-Length: 5\r\n\r\nhello"
    ]
    assert response.should_close is False
    assert (response.status_code, response.body_bytes) == (200, 5)
    assert response.headers_sent
    assert response.finished


def test_empty_body_gets_content_length_zero() -> None:
    response = started("404 Not Found", [])
    assert response.finish() == [
        b"HTTP/1.1 404 Not Found\r\n" + DATE + b"Content-Length: 0\r\n\r\n"
    ]


def test_status_with_empty_reason_is_accepted() -> None:
    assert started("299 ").finish()[0].startswith(b"HTTP/1.1 299 \r\n")


def test_latin1_and_tab_in_values_are_encoded_as_latin1() -> None:
    response = started("200 Caf\xe9", [("X-Name", "caf\xe9\tx")])
    head = response.finish()[0]
    assert head.startswith(b"HTTP/1.1 200 Caf\xe9\r\nX-Name: caf\xe9\tx\r\n")


def test_header_block_is_held_back_until_body_bytes() -> None:
    response = started()
    assert response.write(b"") == []
    assert response.headers_sent is False
    piece = response.write(b"abc")
    assert piece == [
        b"HTTP/1.1 200 OK\r\n" + CT + DATE + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    ]
    assert response.headers_sent is True


# ------------------------------------------------------------------ chunked / 1.0 streams


def test_http11_stream_is_chunked_byte_exact() -> None:
    response = started()
    head = b"HTTP/1.1 200 OK\r\n" + CT + DATE + b"Transfer-Encoding: chunked\r\n\r\n"
    assert response.write(b"hello") == [head + b"5\r\nhello\r\n"]
    assert response.write(b"x" * 26) == [b"1a\r\n" + b"x" * 26 + b"\r\n"]
    assert response.write(b"") == []
    assert response.finish(b"end") == [b"3\r\nend\r\n0\r\n\r\n"]
    assert response.body_bytes == 34
    assert response.should_close is False


def test_chunked_stream_without_tail_ends_with_last_chunk() -> None:
    response = started()
    response.write(b"a")
    assert response.finish() == [b"0\r\n\r\n"]


def test_http10_stream_has_no_framing_and_closes() -> None:
    response = started(version="HTTP/1.0")
    assert response.write(b"abc") == [
        b"HTTP/1.0 200 OK\r\n" + CT + DATE + b"Connection: close\r\n\r\nabc"
    ]
    assert response.finish() == []
    assert response.should_close is True


def test_http10_keep_alive_with_known_length_stays_open() -> None:
    response = started(version="HTTP/1.0")
    assert response.finish(b"hi") == [
        b"HTTP/1.0 200 OK\r\n"
        + CT
        + DATE
        + b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
    ]
    assert response.should_close is False


def test_http10_keep_alive_stream_with_app_content_length_stays_open() -> None:
    response = started(headers=[("Content-Length", "4")], version="HTTP/1.0")
    assert response.write(b"ab") == [
        b"HTTP/1.0 200 OK\r\n" + DATE + b"Content-Length: 4\r\nConnection: keep-alive\r\n\r\nab"
    ]
    assert response.write(b"cd") == [b"cd"]
    assert response.finish() == []
    assert response.should_close is False


def test_http10_without_keep_alive_closes_even_with_length() -> None:
    response = started(version="HTTP/1.0", keep_alive=False)
    assert response.finish(b"hi") == [
        b"HTTP/1.0 200 OK\r\n" + CT + DATE + b"Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    ]
    assert response.should_close is True


def test_http11_request_without_keep_alive_gets_connection_close() -> None:
    response = started(keep_alive=False)
    piece = response.finish(b"x")[0]
    assert b"Connection: close\r\n" in piece
    assert response.should_close is True


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.2", "", "junk"])
def test_any_version_but_10_answers_with_http11(version: str) -> None:
    assert new(version=version).version == "HTTP/1.1"


# ------------------------------------------------------------------ Content-Length from the app


def test_app_content_length_is_honoured_and_streamed_raw() -> None:
    response = started(headers=[("content-length", "6")])
    assert response.write(b"abc") == [
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 6\r\n\r\nabc"
    ]
    assert response.write(b"def") == [b"def"]
    assert response.finish() == []
    assert response.should_close is False


def test_more_bytes_than_content_length_are_cut_and_close(caplog: pytest.LogCaptureFixture) -> None:
    response = started(headers=[("Content-Length", "4")])
    assert response.write(b"abc") == [
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 4\r\n\r\nabc"
    ]
    with caplog.at_level(logging.WARNING, logger="m2bridge.wsgi.response"):
        assert response.write(b"defg") == [b"d"]
        assert response.write(b"hij") == []
        assert response.finish(b"zz") == []
    assert response.should_close is True
    assert response.body_bytes == 4
    warnings = [r for r in caplog.records if "more than its Content-Length" in r.getMessage()]
    assert len(warnings) == 1


def test_list_body_longer_than_content_length_is_cut() -> None:
    response = started(headers=[("Content-Length", "2")])
    assert response.finish(b"abcd") == [
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n\r\nab"
    ]
    assert response.should_close is True


def test_fewer_bytes_than_content_length_close(caplog: pytest.LogCaptureFixture) -> None:
    response = started(headers=[("Content-Length", "10")])
    with caplog.at_level(logging.WARNING, logger="m2bridge.wsgi.response"):
        assert response.finish(b"abc") == [
            b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 10\r\n\r\nabc"
        ]
    assert response.should_close is True
    assert "3 of 10 Content-Length bytes" in caplog.text


def test_exact_content_length_keeps_the_connection() -> None:
    response = started(headers=[("Content-Length", "3")])
    response.write(b"abc")
    response.finish()
    assert response.should_close is False


def test_repeated_equal_content_length_is_sent_once() -> None:
    response = started(headers=[("Content-Length", "1"), ("content-length", " 1 ")])
    assert response.finish(b"x")[0].count(b"ontent-Length") == 1


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Length", "abc")],
        [("Content-Length", "-1")],
        [("Content-Length", "1,1")],
        [("Content-Length", "")],
        [("Content-Length", "\u0661")],
        [("Content-Length", "1" * 19)],
        [("Content-Length", "1"), ("Content-Length", "2")],
    ],
)
def test_invalid_or_conflicting_content_length_is_refused(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ResponseError, match="Content-Length"):
        new().start_response("200 OK", headers)


# ------------------------------------------------------------------ bodiless responses


def test_head_keeps_app_content_length_and_sends_no_body() -> None:
    response = started(headers=[("Content-Length", "13")], method="HEAD")
    assert response.write(b"Hello, world!") == [
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 13\r\n\r\n"
    ]
    assert response.finish(b"more") == []
    assert response.body_bytes == 0
    assert response.should_close is False


def test_head_without_length_adds_no_framing_and_keeps_alive() -> None:
    response = started(method="HEAD", version="HTTP/1.0")
    assert response.finish(b"ignored body") == [
        b"HTTP/1.0 200 OK\r\n" + CT + DATE + b"Connection: keep-alive\r\n\r\n"
    ]
    assert response.should_close is False


def test_head_stream_is_not_chunked() -> None:
    response = started(method="HEAD")
    assert response.write(b"abc") == [b"HTTP/1.1 200 OK\r\n" + CT + DATE + b"\r\n"]
    assert response.finish() == []


@pytest.mark.parametrize("status", ["204 No Content", "101 Switching Protocols", "103 Early"])
def test_1xx_and_204_drop_content_length_and_body(status: str) -> None:
    response = started(status, [("Content-Length", "5")])
    assert response.write(b"abc") == [f"HTTP/1.1 {status}\r\n".encode() + DATE + b"\r\n"]
    assert response.finish(b"de") == []
    assert (response.body_bytes, response.should_close) == (0, False)


def test_304_keeps_content_length_and_sends_no_body() -> None:
    response = started("304 Not Modified", [("Content-Length", "5"), ("ETag", '"x"')])
    assert response.finish(b"hello") == [
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n' + DATE + b"Content-Length: 5\r\n\r\n"
    ]
    assert response.should_close is False


def test_304_without_length_has_no_framing() -> None:
    assert started("304 Not Modified", []).finish() == [
        b"HTTP/1.1 304 Not Modified\r\n" + DATE + b"\r\n"
    ]


# ------------------------------------------------------------------ hop-by-hop and Date


def test_app_connection_close_is_obeyed_and_sent_once() -> None:
    response = started(headers=[("Connection", "Keep-Alive, Close")])
    piece = response.finish(b"x")[0]
    assert piece.count(b"onnection") == 1
    assert b"Connection: close\r\n" in piece
    assert response.should_close is True


@pytest.mark.parametrize(
    "header",
    [
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("TE", "trailers"),
        ("Trailer", "X-Sum"),
        ("Proxy-Connection", "keep-alive"),
    ],
)
def test_app_hop_by_hop_headers_are_dropped(header: tuple[str, str]) -> None:
    response = started(headers=[header])
    assert response.finish(b"ok") == [
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n\r\nok"
    ]
    assert response.should_close is False


def test_app_chunked_header_does_not_double_chunk_a_stream() -> None:
    response = started(headers=[("Transfer-Encoding", "chunked")])
    piece = response.write(b"ab")[0]
    assert piece.count(b"Transfer-Encoding") == 1
    assert piece.endswith(b"\r\n\r\n2\r\nab\r\n")


def test_app_date_is_kept_and_none_added() -> None:
    response = started(headers=[("date", "Mon, 01 Jan 2024 00:00:00 GMT")])
    piece = response.finish()[0]
    assert piece.count(b"ate: ") == 1
    assert b"date: Mon, 01 Jan 2024 00:00:00 GMT\r\n" in piece


def test_date_follows_the_clock_and_is_cached_per_second() -> None:
    clock = [NOW + 0.2]
    response = Response("GET", "HTTP/1.1", True, now=lambda: clock[0])
    response.start_response("200 OK", [])
    assert DATE in response.finish()[0]
    clock[0] = NOW + 1.9
    response = Response("GET", "HTTP/1.1", True, now=lambda: clock[0])
    response.start_response("200 OK", [])
    assert b"Date: Tue, 14 Nov 2023 22:13:21 GMT\r\n" in response.finish()[0]
    assert http_date(int(NOW)) is http_date(int(NOW))


@pytest.mark.parametrize("second", [0, 951_782_400, 1_700_000_000, 1_709_210_096, 4_102_444_799])
def test_http_date_matches_the_email_formatter(second: int) -> None:
    assert http_date(second) == email.utils.formatdate(second, usegmt=True)


def test_default_clock_gives_a_current_date() -> None:
    response = Response("GET", "HTTP/1.1", True)
    response.start_response("200 OK", [])
    assert b" GMT\r\n" in response.finish()[0]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "status",
    [
        "200",
        "20 OK",
        "2000 OK",
        "200OK",
        "099 Low",
        " 200 OK",
        "200 OK\r\nSet-Cookie: x=1",
        "200 O\nK",
        "200 O\rK",
        "200 \x00",
        "200 \x7f",
        "200 \u20ac",
        "",
        200,
        b"200 OK",
        None,
    ],
)
def test_invalid_status_is_refused(status: object) -> None:
    response = new()
    with pytest.raises(ResponseError, match="invalid status"):
        response.start_response(status, [])  # type: ignore[arg-type]
    assert response.status is None


@pytest.mark.parametrize(
    "name",
    ["", "X Foo", "X:Foo", "X\r\nFoo", "X-Foo\n", "Ünï", "X\x00", "(x)", 1, b"X-Foo", None, ["X"]],
)
def test_invalid_header_name_is_refused(name: object) -> None:
    with pytest.raises(ResponseError, match="header name"):
        new().start_response("200 OK", [(name, "v")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nSet-Cookie: evil=1",
        "a\nb",
        "a\rb",
        "a\x00b",
        "a\x0bb",
        "a\x7fb",
        "\u20ac",
        "ok\n",
        b"v",
        None,
        3,
        ["v"],
    ],
)
def test_header_value_with_controls_or_non_latin1_is_refused(value: object) -> None:
    response = new()
    with pytest.raises(ResponseError, match="invalid value for response header X-Test"):
        response.start_response("200 OK", [("X-Test", value)])  # type: ignore[list-item]
    assert response.status is None
    assert response.headers_sent is False


@pytest.mark.parametrize("item", [("a",), ("a", "b", "c"), ["X-A", "b"], "X-A: b", None])
def test_header_items_must_be_pairs(item: object) -> None:
    with pytest.raises(ResponseError, match="not a \\(name, value\\) tuple"):
        new().start_response("200 OK", [item])  # type: ignore[list-item]


@pytest.mark.parametrize("headers", [(("X-A", "b"),), {"X-A": "b"}, None, "X-A: b"])
def test_headers_must_be_a_list(headers: object) -> None:
    with pytest.raises(ResponseError, match="must be a list"):
        new().start_response("200 OK", headers)  # type: ignore[arg-type]


def test_response_error_is_a_value_error_and_an_m2bridge_error() -> None:
    assert issubclass(ResponseError, ValueError)
    assert issubclass(ResponseError, M2BridgeError)


class Text(str):
    """A str subclass, as some frameworks use for header values and statuses."""


def test_str_subclass_status_and_headers_are_checked_each_time() -> None:
    for _ in range(2):
        response = new()
        response.start_response(Text("200 OK"), [(Text("X-A"), Text("b"))])
        assert response.finish()[0].startswith(b"HTTP/1.1 200 OK\r\nX-A: b\r\n")
    with pytest.raises(ResponseError, match="invalid value"):
        new().start_response("200 OK", [("X-A", Text("b\r\nX-Evil: 1"))])


def test_a_header_seen_before_is_still_classified_and_sent() -> None:
    headers = [("Content-Length", "2"), ("Connection", "close"), ("Date", "x"), ("X-A", "1")]
    for _ in range(3):
        response = started(headers=list(headers))
        assert response.finish(b"ok") == [
            b"HTTP/1.1 200 OK\r\nDate: x\r\nX-A: 1\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok"
        ]
        assert response.should_close is True


def test_a_bad_header_after_a_seen_good_one_is_still_refused() -> None:
    started(headers=[("X-A", "1")])
    with pytest.raises(ResponseError, match="invalid value"):
        new().start_response("200 OK", [("X-A", "1"), ("X-B", "2\n")])


def test_long_header_values_are_sent_in_full() -> None:
    cookie = "c=" + "x" * 5000
    for _ in range(2):
        piece = started(headers=[("Set-Cookie", cookie)]).finish()[0]
        assert f"Set-Cookie: {cookie}\r\n".encode() in piece


def test_many_distinct_headers_keep_the_checked_cache_bounded() -> None:
    limit = response_module._CACHE_LIMIT
    for number in range(limit + 10):
        response = started(f"{200 + number % 99} S{number}", [("ETag", f'"{number}"')])
        assert f'ETag: "{number}"\r\n'.encode() in response.finish()[0]
    assert 0 < len(response_module._CHECKED_HEADERS) <= limit
    assert 0 < len(response_module._STATUS_CODES) <= limit


def test_empty_connection_header_is_dropped_and_keeps_alive() -> None:
    response = started(headers=[("Connection", "")])
    assert b"onnection" not in response.finish(b"x")[0]
    assert response.should_close is False


# ------------------------------------------------------------------ start_response rules


def test_second_start_response_without_exc_info_is_an_error() -> None:
    response = started()
    with pytest.raises(ResponseError, match="second time"):
        response.start_response("500 Oops", [])
    with pytest.raises(ResponseError, match="second time"):
        response.start_response("500 Oops", [], (None, None, None))
    assert response.status == "200 OK"


def test_start_response_with_exc_info_before_headers_replaces_everything() -> None:
    response = started("200 OK", [("Connection", "close"), ("Content-Length", "99")])
    response.start_response("500 Oops", [("X-Err", "1")], raised_exc_info())  # type: ignore[arg-type]
    assert response.finish(b"err") == [
        b"HTTP/1.1 500 Oops\r\nX-Err: 1\r\n" + DATE + b"Content-Length: 3\r\n\r\nerr"
    ]
    assert response.status_code == 500
    assert response.should_close is False


def test_exc_info_on_the_first_call_is_accepted() -> None:
    response = new()
    response.start_response("500 Oops", [], raised_exc_info())  # type: ignore[arg-type]
    assert response.status_code == 500


def test_start_response_with_exc_info_after_headers_reraises_it() -> None:
    response = started()
    response.write(b"partial")
    info = raised_exc_info()
    with pytest.raises(KeyError) as caught:
        response.start_response("500 Oops", [], info)  # type: ignore[arg-type]
    assert caught.value is info[1]
    assert caught.value.__traceback__ is not None
    assert response.status == "200 OK"


def test_start_response_after_finish_reraises_exc_info() -> None:
    response = started()
    response.finish()
    with pytest.raises(KeyError):
        response.start_response("500 Oops", [], raised_exc_info())  # type: ignore[arg-type]


def test_invalid_second_call_keeps_the_first_response() -> None:
    response = started()
    with pytest.raises(ResponseError):
        response.start_response("500 Bad\r\n", [], raised_exc_info())  # type: ignore[arg-type]
    assert response.finish(b"x")[0].startswith(b"HTTP/1.1 200 OK\r\n")


# ------------------------------------------------------------------ write callable and misuse


def test_write_callable_queues_bytes_in_order_before_later_output() -> None:
    response = new()
    write = response.start_response("200 OK", [])
    assert write(b"ab") is None
    assert write(b"") is None
    assert write(b"cd") is None
    assert response.write(b"ef") == [
        b"HTTP/1.1 200 OK\r\n"
        + DATE
        + b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n2\r\nef\r\n"
    ]
    assert response.drain() == []


def test_write_callable_output_comes_before_finish() -> None:
    response = new(version="HTTP/1.0")
    write = response.start_response("200 OK", [("Content-Length", "4")])
    write(b"ab")
    assert response.finish(b"cd") == [
        b"HTTP/1.0 200 OK\r\n" + DATE + b"Content-Length: 4\r\nConnection: keep-alive\r\n\r\nabcd"
    ]


def test_written_bytes_leave_with_an_empty_finish() -> None:
    response = new()
    write = response.start_response("200 OK", [("Content-Length", "2")])
    write(b"ab")
    assert response.finish() == [b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n\r\nab"]


def test_drain_returns_queued_bytes_once() -> None:
    response = new()
    write = response.start_response("200 OK", [("Content-Length", "1")])
    write(b"x")
    assert response.drain() == [b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 1\r\n\r\nx"]
    assert response.drain() == []
    assert response.write(b"") == []


def test_bytearray_body_is_accepted() -> None:
    response = started()
    tail = bytearray(b"ab")
    assert response.finish(tail)[0].endswith(b"Content-Length: 2\r\n\r\nab")  # type: ignore[arg-type]


@pytest.mark.parametrize("data", ["text", 1, None, memoryview(b"x"), [b"x"]])
def test_non_bytes_body_is_refused(data: object) -> None:
    with pytest.raises(ResponseError, match="must be bytes"):
        started().write(data)  # type: ignore[arg-type]


def test_body_before_start_response_is_an_error_but_empty_body_is_not() -> None:
    response = new()
    assert response.write(b"") == []
    with pytest.raises(ResponseError, match="before start_response"):
        response.write(b"x")


def test_finish_without_start_response_is_an_error() -> None:
    response = new()
    with pytest.raises(ResponseError, match="never called start_response"):
        response.finish()
    assert response.finished is False


def test_write_after_finish_is_an_error() -> None:
    response = started()
    response.finish()
    with pytest.raises(ResponseError, match="after the response finished"):
        response.write(b"late")


def test_write_callable_after_finish_is_an_error() -> None:
    response = new()
    write = response.start_response("200 OK", [])
    response.finish()
    with pytest.raises(ResponseError, match="after the response finished"):
        write(b"late")


def test_second_finish_returns_nothing() -> None:
    response = started()
    assert response.finish(b"x")
    assert response.finish(b"y") == []


# ------------------------------------------------------------------ keep-alive matrix


@pytest.mark.parametrize(
    ("version", "connection", "expected"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "", True),
        ("HTTP/1.1", "keep-alive", True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "upgrade, close", False),
        ("HTTP/1.1", "closed", True),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "close", False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "foo, keep-alive ", True),
        ("HTTP/1.0", "keep-alive, close", False),
    ],
)
def test_keep_alive_requested(version: str, connection: str | None, expected: bool) -> None:
    assert keep_alive_requested(version, connection) is expected


# ------------------------------------------------------------------ FileWrapper, helper


def test_file_wrapper_reads_in_blocks_and_closes_the_file() -> None:
    data = io.BytesIO(b"abcdefg")
    wrapper = FileWrapper(data, 3)
    assert iter(wrapper) is wrapper
    assert list(wrapper) == [b"abc", b"def", b"g"]
    wrapper.close()
    assert data.closed


def test_file_wrapper_accepts_objects_without_close() -> None:
    class Reader:
        def __init__(self) -> None:
            self.left = [b"x"]

        def read(self, size: int, /) -> bytes:
            return self.left.pop() if self.left else b""

    wrapper = FileWrapper(Reader())
    assert list(wrapper) == [b"x"]
    wrapper.close()  # nothing to close: must not fail


def test_make_simple_response_renders_one_piece() -> None:
    data, should_close = make_simple_response(
        "503 Service Unavailable",
        b"busy\n",
        method="GET",
        version="HTTP/1.1",
        keep_alive=True,
        headers=[("Retry-After", "1")],
    )
    assert data.startswith(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Retry-After: 1\r\n"
    )
    assert data.endswith(b"Content-Length: 5\r\n\r\nbusy\n")
    assert should_close is False


def test_make_simple_response_for_head_http10_close() -> None:
    data, should_close = make_simple_response(
        "400 Bad Request", b"bad\n", method="HEAD", version="HTTP/1.0", keep_alive=False
    )
    assert data.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert data.endswith(b"Connection: close\r\n\r\n")
    assert should_close is True
