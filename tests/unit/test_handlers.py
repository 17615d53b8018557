"""The ready-to-run apps in handlers/, called directly under wsgiref's validator."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import sys
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import gevent
import pytest

from handlers import crash, echo, hello, sleepy, stream, upload


def discard_start_response(status, headers, exc_info=None):
    return lambda data: None


def call(app, path="/", query="", body=b"", method="GET", validate=True):
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        CONTENT_LENGTH=str(len(body)),
        CONTENT_TYPE="application/octet-stream",
    )
    environ["wsgi.input"] = io.BytesIO(body)
    started = []

    def start_response(status, headers, exc_info=None):
        started.append((status, headers))
        return lambda data: None

    wrapped = validator(app) if validate else app
    result = wrapped(environ, start_response)
    try:
        body_out = b"".join(result)
    finally:
        assert hasattr(result, "close")  # the validator's wrapper always has close()
        result.close()
    status, headers = started[-1]
    return status, dict(headers), body_out


def test_hello_says_hello_with_a_content_length():
    status, headers, body = call(hello.app)
    assert (status, body) == ("200 OK", b"Hello, world!\n")
    assert headers["Content-Length"] == "14"


def test_echo_returns_the_str_safe_environ_and_the_body():
    status, _, body = call(echo.app, "/p", "a=1", body=b"\x00\xffbin", method="POST")
    document = json.loads(body)
    assert status == "200 OK"
    assert document["body"].encode("latin-1") == b"\x00\xffbin"
    assert document["environ"]["PATH_INFO"] == "/p"
    assert document["environ"]["wsgi.version"] == [1, 0]
    assert "wsgi.input" not in document["environ"]


def test_stream_yields_numbered_chunks_without_content_length():
    status, headers, body = call(stream.app, query="chunks=4&size=5")
    assert status == "200 OK"
    assert "Content-Length" not in headers
    assert body == b"...0\n...1\n...2\n...3\n"
    assert [stream.chunk(i, 5) for i in range(4)] == [body[i * 5 : i * 5 + 5] for i in range(4)]


@pytest.mark.parametrize("query", ["chunks=abc", "chunks=-5", "size=x"])
def test_stream_ignores_bad_or_negative_parameters(query):
    status, _, body = call(stream.app, query=query)
    assert status == "200 OK"
    assert body.count(b"\n") in (0, 10)


def test_upload_reports_size_sha256_and_content_length():
    data = bytes(range(256)) * 1000
    _, _, body = call(upload.app, body=data, method="POST")
    assert json.loads(body) == {
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": str(len(data)),
    }  # fmt: skip


def test_sleepy_sleeps_the_requested_seconds_clamped_to_0_and_60(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(gevent, "sleep", slept.append)
    status, _, body = call(sleepy.app, query="seconds=0.01")
    assert (status, body) == ("200 OK", b"slept 0.01\n")
    _, _, body = call(sleepy.app, query="seconds=-3")
    assert body == b"slept 0.0\n"
    _, _, body = call(sleepy.app, query="seconds=1000")
    assert body == b"slept 60.0\n"
    assert slept == [0.01, 0.0, 60.0]


def test_crash_raises_in_the_app_by_default():
    with pytest.raises(crash.CrashError, match="inside the application"):
        call(crash.app, "/anything", validate=False)


def test_crash_iter_raises_after_the_first_chunk():
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/x/iter"
    iterator = iter(crash.app(environ, discard_start_response))
    assert next(iterator) == b"first chunk\n"
    with pytest.raises(crash.CrashError, match="iterator"):
        next(iterator)


def test_crash_close_raises_after_a_complete_body():
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/close"
    result = crash.app(environ, discard_start_response)
    assert b"".join(result) == b"complete body\n"
    assert hasattr(result, "close")
    with pytest.raises(crash.CrashError, match="close"):
        result.close()


@pytest.mark.parametrize("name", ["hello", "echo", "stream", "upload", "sleepy", "crash"])
def test_handlers_have_no_side_effects_at_import(name, capsys):
    module = importlib.reload(sys.modules[f"handlers.{name}"])
    assert callable(module.app)
    assert capsys.readouterr() == ("", "")
