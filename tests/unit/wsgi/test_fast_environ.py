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
from hypothesis import HealthCheck, settings

from m2bridge._types import Environ
from m2bridge.errors import ProtocolError
from m2bridge.wire.encode import encode_request
from m2bridge.wire.protocol import HeaderValue, Request, parse_message
from m2bridge.wsgi import fast_environ
from m2bridge.wsgi.environ import ROUTE, EnvironSettings, build_environ
from m2bridge.wsgi.fast_environ import (
    COMPILED,
    PURE_PYTHON,
    FastParser,
    HeaderStores,
)
from tests.helpers.messages import CORPUS

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
#: Both implementations of the header loops: every equivalence test runs through each.
STORES = [PURE_PYTHON, *([COMPILED] if COMPILED is not None else [])]
STORE_IDS = [stores.name.split()[0] for stores in STORES]


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


def assert_declined_or_equal(
    frame: bytes, environ_settings: EnvironSettings, stores: HeaderStores
) -> bool:
    """Assert the fast result equals the reference one; return whether the fast path took it."""
    fast = FastParser(environ_settings, stores).parse(frame, ERRORS)
    if fast is None:
        return False
    expected = reference(frame, environ_settings)
    assert expected is not None, f"taken, but the reference path refuses it: {frame[:120]!r}"
    request, environ = expected
    sender, conn_id, fast_environ_ = fast
    assert (sender, conn_id) == (request.sender, request.conn_id)
    assert comparable(fast_environ_) == comparable(environ)
    return True


@pytest.mark.parametrize("stores", STORES, ids=STORE_IDS)
@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name)
def test_each_capture_is_declined_or_gets_the_reference_environ(
    path: Path, name: str, stores: HeaderStores
) -> None:
    taken = assert_declined_or_equal(path.read_bytes(), SETTINGS[name], stores)
    stem = path.name.split(".")[0]
    if stem in PLAIN:
        assert taken, f"{path.name} is a plain request"
    if stem in DECLINED:
        assert not taken, f"{path.name} carries {DECLINED[stem]}"


def test_the_plain_and_declined_lists_name_real_captures() -> None:
    stems = {path.name.split(".")[0] for path in CAPTURES}
    assert stems >= PLAIN
    assert set(DECLINED) <= stems


@pytest.fixture(params=STORES, ids=STORE_IDS)
def stores(request: pytest.FixtureRequest) -> HeaderStores:
    """Each implementation of the header loops in turn."""
    chosen: HeaderStores = request.param
    return chosen


def test_the_environ_is_fresh_and_carries_the_body_and_the_error_stream(
    stores: HeaderStores,
) -> None:
    frame = (CORPUS / "post_form.tnet").read_bytes()
    parser = FastParser(EnvironSettings(), stores)
    first = parser.parse(frame, sys.stderr)
    second = parser.parse(frame, sys.stderr)
    assert first is not None
    assert second is not None
    assert first[2] is not second[2]
    assert first[2]["wsgi.input"].read() == parse_message(frame).body  # type: ignore[union-attr]
    assert first[2]["wsgi.errors"] is sys.stderr


def test_a_sender_breaking_the_rule_is_declined(stores: HeaderStores) -> None:
    frame = (CORPUS / "get_query.tnet").read_bytes()
    rest = frame.split(b" ", 1)[1]
    assert FastParser(EnvironSettings(), stores).parse(b"bad/sender " + rest, ERRORS) is None


@pytest.mark.parametrize(
    "headers",
    [
        tnetstring.dumps({b"METHOD": b"GET", 5: b"a number as a name"}),
        tnetstring.dumps([b"METHOD", b"GET"]),
        b'8:{"METHOD,',
        b"0" + tnetstring.dumps({b"METHOD": b"GET"}),
        tnetstring.dumps({b"METHOD": b"GET"}).replace(b"6:", b"06:"),
    ],
    ids=[
        *("a header name that is no string", "headers that are a list", "broken JSON"),
        *("a dict length with a leading zero", "a name length with a leading zero"),
    ],
)
def test_headers_of_the_wrong_shape_are_declined(headers: bytes, stores: HeaderStores) -> None:
    frame = b"m2 1 / " + headers + b"0:,"
    assert FastParser(EnvironSettings(), stores).parse(frame, ERRORS) is None
    assert reference(frame, EnvironSettings()) is None  # the reference path refuses them too


GET = tnetstring.dumps({b"METHOD": b"GET"})
HTTP2 = tnetstring.dumps({b"METHOD": b"GET", b"VERSION": b"HTTP/2.0"})


@pytest.mark.parametrize(
    ("frame", "reference_serves_it"),
    [
        (b"m2 1 /", False),
        (b"m2 x1 / " + GET + b"0:,", False),
        (
            b"m2 1 / " + tnetstring.dumps({b"METHOD": b"GET", b"VERSION": b"HTTP/2.0"}) + b"0:,",
            True,
        ),
        (b"m2 1 / " + tnetstring.dumps({b"METHOD": b"FROB"}) + b"0:,", True),
    ],
    ids=["three fields", "a connection id that is no number", "HTTP/2.0", "an uncommon method"],
)
def test_unusual_messages_are_left_to_the_reference_path(
    frame: bytes, reference_serves_it: bool, stores: HeaderStores
) -> None:
    assert FastParser(EnvironSettings(), stores).parse(frame, ERRORS) is None
    assert (reference(frame, EnvironSettings()) is not None) == reference_serves_it


def test_header_names_and_senders_are_remembered_within_bounds(
    monkeypatch: pytest.MonkeyPatch, stores: HeaderStores
) -> None:
    monkeypatch.setattr(fast_environ, "_KEYS_MAX", 4)
    monkeypatch.setattr(fast_environ, "_SENDERS_MAX", 2)
    parser = FastParser(EnvironSettings(), stores)
    monkeypatch.setattr(fast_environ, "_KEYS", fast_environ.EnvironKeys())
    for number in range(20):
        headers: dict[str, HeaderValue] = {"METHOD": "GET", f"x-forged-{number}": "1"}
        sender = b"sender-%d" % number
        frame = encode_request(sender, 1, "/", headers, b"", json_headers=bool(number % 2))
        result = parser.parse(frame, ERRORS)
        assert result is not None
        assert result[2][f"HTTP_X_FORGED_{number}"] == "1"
    assert len(fast_environ._SENDERS) <= 2
    assert len(fast_environ._KEYS) <= 4
