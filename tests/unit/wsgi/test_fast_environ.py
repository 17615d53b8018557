"""The fast path's parser (m2bridge.wsgi.fast_environ) against the reference path.

For every message, ``FastParser.parse`` either declines it (None) or returns exactly what
``parse_message`` + ``build_environ`` give: the same sender, connection id and environ, key for
key, and a ``wsgi.input`` with the same bytes. Checked over the captured corpus under each kind
of ``--script-name``, over generated requests (hypothesis) and over mutated captures. Plain
requests must be taken, so declining everything cannot pass.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import tnetstring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2bridge._types import Environ
from m2bridge.errors import ProtocolError
from m2bridge.wire.encode import encode_request
from m2bridge.wire.protocol import HeaderValue, Request, parse_message
from m2bridge.wsgi import fast_environ
from m2bridge.wsgi.environ import ROUTE, EnvironSettings, build_environ
from m2bridge.wsgi.fast_environ import FastParser
from tests.helpers.messages import CORPUS, MESSAGES, mutated_messages

EXAMPLES = int(os.environ.get("M2BRIDGE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SETTINGS = {
    "no script name": EnvironSettings(),
    "fixed script name": EnvironSettings(script_name="/tnet"),
    "route script name": EnvironSettings(script_name=ROUTE),
    "single process": EnvironSettings(multithread=False, multiprocess=False),
}
CAPTURES = sorted(
    path
    for path in [*CORPUS.glob("*.tnet"), *CORPUS.glob("*.json")]
    if ".expected" not in path.suffixes
)
#: Captures the fast path must take (plain requests, each header once, common method).
PLAIN = {
    *("delete", "expect_continue", "get_bare_query", "get_encoded_path", "get_fragment"),
    *("get_query", "get_unicode_path", "head", "http10_keepalive", "http10_no_host"),
    *("options", "patch", "pipelined_1", "pipelined_2", "post_empty", "post_form"),
    *("post_json", "put_binary", "shared_get_query", "shared_http10", "shared_post_form"),
    *("shared_post_json", "shared_put_binary"),
}
#: Captures it must leave to the reference path, and why.
DECLINED = {
    "headers_repeated": "a repeated header",
    "headers_dup7": "a repeated header",
    "shared_headers_dup": "a repeated header",
    "frob_method": "an uncommon method",
    "credits": "a notice",
    "disconnect": "a notice",
    "json_socket_msg": "a JSON message",
    "flow_control_request": "download credits",
    "headers_spoofed_upload_done": "an upload header",
    "upload_start": "an upload",
    "upload_done": "an upload",
    "stream_start": "a streamed body",
    "stream_chunk_1": "a streamed body",
    "websocket_handshake": "a WebSocket",
    "websocket_text": "a WebSocket",
}
ERRORS = io.StringIO()


def reference(frame: bytes, environ_settings: EnvironSettings) -> tuple[Request, Environ] | None:
    """What the reference path makes of ``frame``: the request and its environ, if a request."""
    try:
        event = parse_message(frame)
    except ProtocolError:
        return None
    if type(event) is not Request:
        return None
    return event, build_environ(event, io.BytesIO(event.body), environ_settings, ERRORS)


def comparable(environ: Environ) -> dict[str, Any]:
    """The environ with ``wsgi.input`` replaced by the bytes it reads."""
    plain = dict(environ)
    plain["wsgi.input"] = plain["wsgi.input"].read()
    return plain


def assert_declined_or_equal(frame: bytes, environ_settings: EnvironSettings) -> bool:
    """Assert the fast result equals the reference one; return whether the fast path took it."""
    fast = FastParser(environ_settings).parse(frame, ERRORS)
    if fast is None:
        return False
    expected = reference(frame, environ_settings)
    assert expected is not None, f"taken, but the reference path refuses it: {frame[:120]!r}"
    request, environ = expected
    sender, conn_id, fast_environ_ = fast
    assert (sender, conn_id) == (request.sender, request.conn_id)
    assert comparable(fast_environ_) == comparable(environ)
    return True


@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name)
def test_each_capture_is_declined_or_gets_the_reference_environ(path: Path, name: str) -> None:
    taken = assert_declined_or_equal(path.read_bytes(), SETTINGS[name])
    stem = path.name.split(".")[0]
    if stem in PLAIN:
        assert taken, f"{path.name} is a plain request"
    if stem in DECLINED:
        assert not taken, f"{path.name} carries {DECLINED[stem]}"


def test_the_plain_and_declined_lists_name_real_captures() -> None:
    stems = {path.name.split(".")[0] for path in CAPTURES}
    assert stems >= PLAIN
    assert set(DECLINED) <= stems


def test_the_environ_is_fresh_and_carries_the_body_and_the_error_stream() -> None:
    frame = (CORPUS / "post_form.tnet").read_bytes()
    parser = FastParser(EnvironSettings())
    first = parser.parse(frame, sys.stderr)
    second = parser.parse(frame, sys.stderr)
    assert first is not None
    assert second is not None
    assert first[2] is not second[2]
    assert first[2]["wsgi.input"].read() == parse_message(frame).body  # type: ignore[union-attr]
    assert first[2]["wsgi.errors"] is sys.stderr


def test_a_sender_breaking_the_rule_is_declined() -> None:
    frame = (CORPUS / "get_query.tnet").read_bytes()
    rest = frame.split(b" ", 1)[1]
    assert FastParser(EnvironSettings()).parse(b"bad/sender " + rest, ERRORS) is None


@pytest.mark.parametrize(
    "headers",
    [
        tnetstring.dumps({b"METHOD": b"GET", 5: b"a number as a name"}),
        tnetstring.dumps([b"METHOD", b"GET"]),
        b'8:{"METHOD,',
    ],
    ids=["a header name that is no string", "headers that are a list", "broken JSON"],
)
def test_headers_of_the_wrong_shape_are_declined(headers: bytes) -> None:
    frame = b"m2 1 / " + headers + b"0:,"
    assert FastParser(EnvironSettings()).parse(frame, ERRORS) is None
    assert reference(frame, EnvironSettings()) is None  # the reference path refuses them too


def test_header_names_and_senders_are_remembered_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fast_environ, "_KEYS_MAX", 4)
    monkeypatch.setattr(fast_environ, "_SENDERS_MAX", 2)
    parser = FastParser(EnvironSettings())
    for number in range(20):
        headers: dict[str, HeaderValue] = {"METHOD": "GET", f"x-forged-{number}": "1"}
        sender = b"sender-%d" % number
        frame = encode_request(sender, 1, "/", headers, b"", json_headers=bool(number % 2))
        result = parser.parse(frame, ERRORS)
        assert result is not None
        assert result[2][f"HTTP_X_FORGED_{number}"] == "1"
    assert len(fast_environ._SENDERS) <= 2


# ----------------------------------------------------------------------------- generated requests

LATIN1 = st.characters(min_codepoint=0, max_codepoint=0xFF)
NAMES = st.sampled_from(
    [
        *("host", "content-type", "content-length", "x-forwarded-for", "connection", "cookie"),
        *("URI", "QUERY", "PATH", "PATTERN", "URL_SCHEME", "REMOTE_ADDR", "FRAGMENT"),
        *("x_smuggled", "X-Upper", "x-mongrel2-upload-start", "DOWNLOAD_CREDITS", ""),
    ]
) | st.text(LATIN1, min_size=1, max_size=12)
VALUES = st.text(LATIN1, max_size=30) | st.lists(st.text(LATIN1, max_size=8), max_size=3)
HEADERS = st.dictionaries(NAMES.filter(lambda name: name not in ("METHOD", "VERSION")), VALUES)
METHODS = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "FROB"])
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTPX", None])
PATHS = st.sampled_from(["/", "/tnet", "/tnet/x", "/a%20b", "/%7e", "/tnetx"]) | st.text(
    LATIN1.filter(lambda char: char != " "), min_size=1, max_size=20
)


@FUZZ
@given(
    st.sampled_from(sorted(SETTINGS)),
    st.integers(0, 2**64),
    PATHS,
    METHODS,
    VERSIONS,
    HEADERS,
    st.binary(max_size=64),
    st.booleans(),
)
def test_generated_requests_are_declined_or_get_the_reference_environ(
    name: str,
    conn_id: int,
    path: str,
    method: str,
    version: str | None,
    extra: dict[str, HeaderValue],
    body: bytes,
    json_headers: bool,
) -> None:
    headers: dict[str, HeaderValue] = {"METHOD": method, **extra}
    if version is not None:
        headers["VERSION"] = version
    frame = encode_request(b"m2", conn_id, path, headers, body, json_headers=json_headers)
    assert_declined_or_equal(frame, SETTINGS[name])


@FUZZ
@given(st.sampled_from(sorted(SETTINGS)), mutated_messages())
def test_mutated_captures_are_declined_or_get_the_reference_environ(
    name: str, frame: bytes
) -> None:
    assert_declined_or_equal(frame, SETTINGS[name])


@FUZZ
@given(st.sampled_from(MESSAGES), st.binary(max_size=32))
def test_captures_with_a_random_tail_are_declined_or_equal(frame: bytes, tail: bytes) -> None:
    assert_declined_or_equal(frame + tail, SETTINGS["no script name"])
