"""Unit tests of m2bridge.wsgi.handler.run_wsgi: PEP 3333 apps in, raw HTTP pieces out.

Well-behaved apps run under ``wsgiref.validate.validator``, so any PEP 3333 violation on either
side (including an iterable never closed) fails the test.
"""

from __future__ import annotations

import io
import logging
import sys
import wsgiref.validate
from collections.abc import Iterable, Iterator

import pytest

from m2bridge._types import Environ, StartResponse, WSGIApp
from m2bridge.wire.protocol import Request
from m2bridge.wsgi.environ import EnvironSettings, build_environ
from m2bridge.wsgi.handler import run_wsgi
from m2bridge.wsgi.response import Response, ResponseError

NOW = 1_700_000_000.0
DATE = b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
TEXT = [("Content-Type", "text/plain")]
ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
    + DATE
    + b"Content-Length: 22\r\n\r\nInternal Server Error\n"
)


class FakeGreenletExit(BaseException):
    """Stands in for gevent's GreenletExit (a BaseException) without importing gevent."""


class Body:
    """A response iterable that counts close() calls and fails where it is told to."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        fail_at: int | None = None,
        close_error: BaseException | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.close_error = close_error
        self.error = error or RuntimeError("boom while iterating")
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise self.error
            yield chunk
        if self.fail_at == len(self.chunks):
            raise self.error

    def close(self) -> None:
        self.closed += 1
        if self.close_error is not None:
            raise self.close_error


def returning(
    result: object, status: str = "200 OK", headers: list[tuple[str, str]] | None = None
) -> WSGIApp:
    """An app that calls start_response once and returns ``result`` as it is."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, list(TEXT) if headers is None else headers)
        return result  # type: ignore[return-value]

    return app


def serve(
    app: WSGIApp,
    method: str = "GET",
    version: str = "HTTP/1.1",
    keep_alive: bool = True,
    body: bytes = b"",
) -> tuple[list[bytes], Response]:
    headers: dict[str, str | list[str]] = {
        "METHOD": method,
        "VERSION": version,
        "PATH": "/app/x",
        "URI": "/app/x?q=1",
        "QUERY": "q=1",
        "REMOTE_ADDR": "127.0.0.1",
        "URL_SCHEME": "http",
        "host": "localhost",
    }
    if body:
        headers["content-length"] = str(len(body))
        headers["content-type"] = "application/octet-stream"
    request = Request(b"sender-1", 5, "/app/x", headers, body)
    environ = build_environ(request, io.BytesIO(body), EnvironSettings(), io.StringIO())
    response = Response(method, version, keep_alive, now=lambda: NOW)
    pieces = list(run_wsgi(app, environ, response))
    assert all(pieces), "run_wsgi yielded an empty piece"
    return pieces, response


def parse(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """Split one complete HTTP/1.x response into status line, headers and de-framed body."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                assert rest == b"\r\n"
                break
            body += rest[:size]
            assert rest[size : size + 2] == b"\r\n"
            rest = rest[size + 2 :]
    else:
        body = rest
        if "content-length" in headers:
            assert len(body) == int(headers["content-length"])
    return lines[0], headers, body


def error_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "m2bridge.wsgi.handler" and record.levelno == logging.ERROR
    ]


# ------------------------------------------------------------------ well-behaved apps


def test_list_result_is_one_piece_with_computed_content_length() -> None:
    pieces, response = serve(returning([b"Hello, ", b"", b"world!"]))
    assert pieces == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + DATE
        + b"Content-Length: 13\r\n\r\nHello, world!"
    ]
    assert response.should_close is False
    assert (response.status_code, response.body_bytes) == (200, 13)


def test_tuple_result_is_merged_too() -> None:
    pieces, _ = serve(returning((b"a", b"b")))
    assert len(pieces) == 1
    assert parse(pieces[0])[2] == b"ab"


def test_list_subclass_with_close_is_merged_and_closed_once() -> None:
    class ClosingList(list[bytes]):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    result = ClosingList([b"a", b"bc"])
    pieces, _ = serve(returning(result))
    assert pieces == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + DATE + b"Content-Length: 3\r\n\r\nabc"
    ]
    assert result.closed == 1


def test_list_subclass_with_non_bytes_items_gets_a_500_and_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class ClosingList(list[object]):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    result = ClosingList([b"ok", 1])
    pieces, _ = serve(returning(result))
    assert pieces == [ERROR_500]
    assert result.closed == 1
    [record] = error_logs(caplog)
    assert record.exc_info is not None
    assert "body items of type ['bytes', 'int']" in str(record.exc_info[1])


def test_empty_list_gives_content_length_zero() -> None:
    pieces, _ = serve(returning([]))
    assert pieces[0].endswith(b"Content-Length: 0\r\n\r\n")


def test_validated_list_app_streams_a_correct_response() -> None:
    pieces, response = serve(wsgiref.validate.validator(returning([b"one", b"two"])))
    status, headers, body = parse(b"".join(pieces))
    assert (status, body) == ("HTTP/1.1 200 OK", b"onetwo")
    assert headers["content-type"] == "text/plain"
    assert response.should_close is False


def test_validated_generator_streams_each_chunk_without_empty_pieces() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", list(TEXT))
        yield b""
        yield b"first"
        yield b""
        yield b"second"

    pieces, response = serve(wsgiref.validate.validator(app))
    assert pieces == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + DATE
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
        b"6\r\nsecond\r\n",
        b"0\r\n\r\n",
    ]
    assert response.should_close is False


def test_generator_that_starts_the_response_lazily_works() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        yield b"ok"

    pieces, _ = serve(wsgiref.validate.validator(app))
    assert pieces == [
        b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n"
        + DATE
        + b"Content-Length: 2\r\n\r\nok"
    ]


def test_empty_generator_gets_content_length_zero() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", list(TEXT))
        yield from ()

    pieces, _ = serve(wsgiref.validate.validator(app))
    assert pieces[0].endswith(b"Content-Length: 0\r\n\r\n")


def test_validated_write_callable_app_is_merged_into_one_piece() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", list(TEXT))
        write(b"legacy ")
        write(b"write")
        return [b" and list"]

    pieces, _ = serve(wsgiref.validate.validator(app))
    assert parse(b"".join(pieces))[2] == b"legacy write and list"
    pieces, _ = serve(app)
    assert len(pieces) == 1
    assert parse(pieces[0])[2] == b"legacy write and list"


def test_write_callable_inside_a_generator_keeps_the_order() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", list(TEXT))
        write(b"1")
        yield b"2"
        write(b"3")
        yield b"4"

    pieces, _ = serve(wsgiref.validate.validator(app))
    assert parse(b"".join(pieces))[2] == b"1234"


def test_write_before_returning_a_generator_is_sent_at_once() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Body:
        write = start_response("200 OK", list(TEXT))
        write(b"early")
        return Body([b"late"])

    generator = run_wsgi(app, {}, Response("GET", "HTTP/1.1", True, now=lambda: NOW))
    assert next(generator).endswith(b"5\r\nearly\r\n")
    assert list(generator) == [b"4\r\nlate\r\n", b"0\r\n\r\n"]


def test_validated_file_wrapper_app_streams_the_file_and_closes_it() -> None:
    data = io.BytesIO(b"0123456789")

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapped: Iterable[bytes] = environ["wsgi.file_wrapper"](data, 4)
        return wrapped

    pieces, _ = serve(wsgiref.validate.validator(app))
    assert len(pieces) == 4
    assert parse(b"".join(pieces))[2] == b"0123456789"
    assert data.closed


def test_validated_app_reading_the_body_echoes_it() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        length = int(environ["CONTENT_LENGTH"])
        data = environ["wsgi.input"].read(length)
        start_response("200 OK", list(TEXT))
        return [data[::-1]]

    pieces, _ = serve(wsgiref.validate.validator(app), method="POST", body=b"abc\x00\xff")
    assert parse(b"".join(pieces))[2] == b"\xff\x00cba"


def test_validated_app_replacing_its_response_with_exc_info() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", list(TEXT))
        try:
            raise LookupError("not found after all")
        except LookupError:
            start_response("404 Not Found", list(TEXT), sys.exc_info())
        return [b"nope"]

    pieces, response = serve(wsgiref.validate.validator(app))
    assert parse(b"".join(pieces))[0] == "HTTP/1.1 404 Not Found"
    assert response.status_code == 404


def test_validated_head_response_has_no_body() -> None:
    app = returning([b"0123456789"], headers=[*TEXT, ("Content-Length", "10")])
    pieces, response = serve(wsgiref.validate.validator(app), method="HEAD")
    assert pieces == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + DATE + b"Content-Length: 10\r\n\r\n"
    ]
    assert (response.body_bytes, response.should_close) == (0, False)


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_validated_bodiless_statuses(status: str) -> None:
    pieces, response = serve(wsgiref.validate.validator(returning([b""], status, [])))
    assert pieces == [f"HTTP/1.1 {status}\r\n".encode() + DATE + b"\r\n"]
    assert response.should_close is False


def test_http10_stream_closes_the_connection() -> None:
    pieces, response = serve(returning(Body([b"a", b"b"])), version="HTTP/1.0")
    assert b"".join(pieces).endswith(b"Connection: close\r\n\r\nab")
    assert response.should_close is True


def test_http10_list_keeps_the_connection() -> None:
    pieces, response = serve(returning([b"ab"]), version="HTTP/1.0")
    assert b"Connection: keep-alive\r\n" in pieces[0]
    assert response.should_close is False


def test_list_longer_than_its_content_length_is_cut_and_closes() -> None:
    pieces, response = serve(returning([b"abcde"], headers=[("Content-Length", "3")]))
    assert pieces[0].endswith(b"Content-Length: 3\r\n\r\nabc")
    assert response.should_close is True


def test_stream_shorter_than_its_content_length_closes() -> None:
    pieces, response = serve(returning(Body([b"ab"]), headers=[("Content-Length", "5")]))
    assert pieces == [b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 5\r\n\r\nab"]
    assert response.should_close is True


# ------------------------------------------------------------------ close() exactly once


@pytest.mark.parametrize("chunks", [[], [b"a"], [b"a", b"b", b"c"]])
def test_close_is_called_exactly_once_on_success(chunks: list[bytes]) -> None:
    body = Body(chunks)
    serve(returning(body))
    assert body.closed == 1


def test_close_is_called_when_the_consumer_stops_early() -> None:
    body = Body([b"a", b"b", b"c"])
    response = Response("GET", "HTTP/1.1", True, now=lambda: NOW)
    generator = run_wsgi(returning(body), {}, response)
    next(generator)
    generator.close()
    assert body.closed == 1
    assert response.should_close is True


def test_a_consumer_that_stops_reading_the_500_leaves_the_connection_to_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise RuntimeError("broken before start_response")

    response = Response("GET", "HTTP/1.1", True, now=lambda: NOW)
    generator = run_wsgi(broken, {}, response)
    assert next(generator).startswith(b"HTTP/1.1 500")
    assert response.should_close is False  # a complete 500 keeps the connection
    generator.close()
    assert response.should_close is True
    assert "error while calling the application" in caplog.text


def test_greenlet_exit_at_a_yield_propagates_after_close() -> None:
    body = Body([b"a", b"b"])
    response = Response("GET", "HTTP/1.1", True, now=lambda: NOW)
    generator = run_wsgi(returning(body), {}, response)
    next(generator)
    with pytest.raises(FakeGreenletExit):
        generator.throw(FakeGreenletExit())
    assert body.closed == 1
    assert response.should_close is True


def test_base_exception_from_the_iterable_propagates_after_close() -> None:
    body = Body([b"a", b"b"], fail_at=1, error=KeyboardInterrupt())
    response = Response("GET", "HTTP/1.1", True, now=lambda: NOW)
    generator = run_wsgi(returning(body), {}, response)
    next(generator)
    with pytest.raises(KeyboardInterrupt):
        next(generator)
    assert body.closed == 1
    assert response.should_close is True


def test_base_exception_from_the_app_call_propagates() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise FakeGreenletExit

    response = Response("GET", "HTTP/1.1", True)
    with pytest.raises(FakeGreenletExit):
        list(run_wsgi(app, {}, response))
    assert response.should_close is True


def test_close_error_during_an_early_stop_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"a", b"b"], close_error=OSError("close failed"))
    generator = run_wsgi(returning(body), {}, Response("GET", "HTTP/1.1", True))
    next(generator)
    generator.close()
    assert body.closed == 1
    assert "close() of the application's response raised" in caplog.text


# ------------------------------------------------------------------ errors before headers: 500


def test_app_raising_before_start_response_gets_a_500(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ZeroDivisionError("app bug")

    pieces, response = serve(app)
    assert pieces == [ERROR_500]
    assert (response.status_code, response.should_close) == (500, False)
    [record] = error_logs(caplog)
    assert "calling the application of GET '/app/x'" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


def test_app_raising_after_start_response_gets_a_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", "99")])
        raise ValueError("late bug")

    pieces, response = serve(app)
    assert pieces == [ERROR_500]
    assert response.should_close is False


def test_iterable_failing_before_any_body_gets_a_500_and_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"a"], fail_at=0)
    pieces, _ = serve(returning(body))
    assert pieces == [ERROR_500]
    assert body.closed == 1
    assert "iterating the response" in error_logs(caplog)[0].getMessage()


def test_iterable_failing_after_only_empty_chunks_gets_a_500() -> None:
    body = Body([b"", b""], fail_at=2)
    pieces, _ = serve(returning(body))
    assert pieces == [ERROR_500]
    assert body.closed == 1


def test_list_close_raising_gets_a_500_and_is_not_called_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class ClosingList(list[bytes]):
        closed = 0

        def close(self) -> None:
            self.closed += 1
            raise RuntimeError("close failed")

    result = ClosingList([b"data"])
    pieces, _ = serve(returning(result))
    assert pieces == [ERROR_500]
    assert result.closed == 1
    assert "closing the response" in error_logs(caplog)[0].getMessage()


def test_close_raising_in_the_error_path_is_logged_and_still_answers_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"a"], fail_at=0, close_error=RuntimeError("close failed too"))
    pieces, _ = serve(returning(body))
    assert pieces == [ERROR_500]
    assert body.closed == 1
    assert "close() of the application's response raised" in caplog.text


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("a str body", "returned str, not an iterable of bytes"),
        (b"a bytes body", "returned bytes, not an iterable of bytes"),
        (bytearray(b"x"), "returned bytearray, not an iterable of bytes"),
        ([b"ok", "text"], "body items of type ['bytes', 'str']"),
        ((1, 2), "body items of type ['int']"),
        (iter(["text"]), "response body must be bytes, not str"),
        (None, "'NoneType' object is not iterable"),
        (42, "'int' object is not iterable"),
    ],
)
def test_bad_results_get_a_500(
    result: object, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    pieces, _ = serve(returning(result))
    assert pieces == [ERROR_500]
    [record] = error_logs(caplog)
    assert record.exc_info is not None
    assert message in str(record.exc_info[1])


@pytest.mark.parametrize("result", [[b"body"], [], Body([b"x"]), Body([])])
def test_app_that_never_calls_start_response_gets_a_500(
    result: Iterable[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return result

    pieces, _ = serve(app)
    assert pieces == [ERROR_500]
    [record] = error_logs(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ResponseError)


def test_start_response_twice_gets_a_500(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", list(TEXT))
        start_response("201 Created", list(TEXT))
        return [b"x"]

    pieces, _ = serve(app)
    assert pieces == [ERROR_500]
    [record] = error_logs(caplog)
    assert record.exc_info is not None
    assert "second time without exc_info" in str(record.exc_info[1])


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Evil", "a\r\nSet-Cookie: session=stolen")],
        [("X-Evil", "a\nb")],
        [("X-Evil", "a\x00b")],
        [("X-Evil\r\nSet-Cookie", "x")],
        [("X Evil", "x")],
    ],
)
def test_hostile_app_headers_get_a_500_without_them(headers: list[tuple[str, str]]) -> None:
    pieces, response = serve(returning([b"body"], headers=headers))
    assert pieces == [ERROR_500]
    assert b"Evil" not in pieces[0]
    assert b"stolen" not in pieces[0]
    assert response.should_close is False


def test_hostile_status_gets_a_500() -> None:
    pieces, _ = serve(returning([b"body"], status="200 OK\r\nSet-Cookie: x=1"))
    assert pieces == [ERROR_500]


def test_app_catching_the_header_error_can_answer_itself() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            start_response("200 OK", [("X-Bad", "\r\n")])
        except ValueError:
            start_response("400 Bad Request", list(TEXT), sys.exc_info())
        return [b"fixed"]

    pieces, _ = serve(app)
    assert parse(pieces[0])[:3:2] == ("HTTP/1.1 400 Bad Request", b"fixed")


def test_500_for_head_has_no_body() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError

    pieces, _ = serve(app, method="HEAD")
    assert pieces == [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + DATE
        + b"\r\n"
    ]


def test_500_honours_the_clients_connection_wish() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Connection", "close")])
        raise RuntimeError

    pieces, response = serve(app, version="HTTP/1.0")
    assert pieces[0].startswith(b"HTTP/1.0 500 Internal Server Error\r\n")
    assert pieces[0].endswith(
        b"Content-Length: 22\r\nConnection: keep-alive\r\n\r\n" + b"Internal Server Error\n"
    )
    assert response.should_close is False
    pieces, response = serve(app, keep_alive=False)
    assert b"Connection: close\r\n" in pieces[0]
    assert response.should_close is True


# ------------------------------------------------------------------ errors after headers: close


def test_iterable_failing_after_body_bytes_stops_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"first", b"second"], fail_at=1)
    pieces, response = serve(returning(body))
    assert pieces == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + DATE
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
    ]
    assert response.should_close is True
    assert body.closed == 1
    assert len(error_logs(caplog)) == 1


def test_stream_close_raising_after_the_body_closes_without_last_chunk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Body([b"abc"], close_error=RuntimeError("close failed"))
    pieces, response = serve(returning(body))
    assert pieces[-1].endswith(b"3\r\nabc\r\n")
    assert response.should_close is True
    assert body.closed == 1
    assert "closing the response" in error_logs(caplog)[0].getMessage()


def test_non_bytes_chunk_after_body_bytes_closes() -> None:
    pieces, response = serve(returning(iter([b"ok", "text"])))
    assert len(pieces) == 1
    assert response.should_close is True


def test_written_bytes_then_app_error_are_sent_and_close() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "10")])
        write(b"part")
        raise RuntimeError("after write")

    pieces, response = serve(app)
    assert pieces == [b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 10\r\n\r\npart"]
    assert response.should_close is True


def test_exc_info_after_headers_reraises_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", list(TEXT))
        yield b"partial"
        try:
            raise KeyError("too late")
        except KeyError:
            start_response("500 Oops", list(TEXT), sys.exc_info())
        yield b"never"

    pieces, response = serve(app)
    assert len(pieces) == 1
    assert b"never" not in pieces[0]
    assert response.should_close is True
    [record] = error_logs(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


def test_write_after_the_response_finished_raises_to_the_caller() -> None:
    saved: list[object] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        saved.append(start_response("200 OK", list(TEXT)))
        return [b"done"]

    pieces, _ = serve(app)
    write = saved[0]
    assert callable(write)
    with pytest.raises(ResponseError, match="after the response finished"):
        write(b"late")
    assert len(pieces) == 1


def test_environ_without_request_keys_still_logs(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError

    assert list(run_wsgi(app, {}, Response("GET", "HTTP/1.1", True, now=lambda: NOW))) == [
        ERROR_500
    ]
    assert "of None None" in error_logs(caplog)[0].getMessage()


# ------------------------------------------------------------------ purity
