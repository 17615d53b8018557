"""Property tests of m2bridge.wire.protocol (hypothesis).

(a) no byte string makes ``parse_message`` raise anything but ``ProtocolError``: random bytes and
mutated real messages (bit flips, truncations, insertions, deletions, length-prefix changes);
(b) a request encoded with tnetstring headers and with JSON headers parses to equal ``Request``s;
(c) ``encode_reply`` / ``encode_broadcast`` output always matches Mongrel2's reply grammar;
(d) the ujson fast path for JSON headers decides exactly as ``json.loads(strict=False)`` would.

The default run is quick. Scale it with ``M2BRIDGE_FUZZ_EXAMPLES`` (examples per test), e.g.
``M2BRIDGE_FUZZ_EXAMPLES=1000000 python -m pytest tests/unit/wire/test_protocol_fuzz.py``
"""

from __future__ import annotations

import json
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2bridge.errors import ProtocolError
from m2bridge.wire import protocol
from m2bridge.wire.encode import MAX_TARGETS, encode_broadcast, encode_reply, encode_request
from m2bridge.wire.protocol import Event, HeaderValue, JSONMessage, Request, parse_message
from tests.helpers.messages import MESSAGES, mutated_messages

EXAMPLES = int(os.environ.get("M2BRIDGE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REPLY_RE = re.compile(rb"([A-Za-z0-9-]+) ([0-9]+):([0-9]+(?: [0-9]+)*), (.*)\Z", re.DOTALL)
LATIN1 = st.characters(min_codepoint=0, max_codepoint=0xFF)
SENDERS = st.from_regex(rb"[A-Za-z0-9-]+", fullmatch=True)


def parse_or_protocol_error(data: bytes) -> Event | None:
    """Parse; a ``ProtocolError`` gives None, any other exception fails the test."""
    try:
        event = parse_message(data)
    except ProtocolError:
        return None
    assert_latin1_headers(event)
    return event


def assert_latin1_headers(event: Event) -> None:
    headers = event.headers if isinstance(event, Request | JSONMessage) else {}
    for key, value in headers.items():
        for text in (key, *([value] if isinstance(value, str) else value)):
            assert isinstance(text, str)
            assert all(char <= "\xff" for char in text)


# ----------------------------------------------------------------------------- (a) no crash


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    parse_or_protocol_error(data)


@FUZZ
@given(mutated_messages())
def test_mutated_real_messages_raise_only_protocol_error(data: bytes) -> None:
    parse_or_protocol_error(data)


@FUZZ
@given(st.sampled_from(MESSAGES), st.binary(max_size=64))
def test_valid_prefix_with_random_tail_raises_only_protocol_error(data: bytes, tail: bytes) -> None:
    assert parse_or_protocol_error(data + tail) is None or not tail


# ----------------------------------------------------------------------------- (b) round trip

RESERVED = {"METHOD", "VERSION", "x-mongrel2-upload-start", "x-mongrel2-upload-done"}
RESERVED |= {"UPLOAD_STREAM", "FLAGS"}
HEADER_VALUES = st.text(LATIN1, max_size=40) | st.lists(st.text(LATIN1, max_size=12), max_size=5)
HEADERS = st.dictionaries(
    st.text(LATIN1, min_size=1, max_size=20).filter(lambda key: key not in RESERVED),
    HEADER_VALUES,
    max_size=12,
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "FROB"])


@FUZZ
@given(
    SENDERS,
    st.integers(0, 2**64),
    st.text(LATIN1.filter(lambda c: c != " "), max_size=40),
    HEADERS,
    METHODS,
    st.binary(max_size=256),
)
def test_tnetstring_and_json_encodings_parse_to_equal_requests(
    sender: bytes,
    conn_id: int,
    path: str,
    extra: dict[str, HeaderValue],
    method: str,
    body: bytes,
) -> None:
    headers = {"METHOD": method, "VERSION": "HTTP/1.1", **extra}
    expected = Request(sender, conn_id, path, headers, body)
    as_tnet = encode_request(sender, conn_id, path, headers, body, json_headers=False)
    as_json = encode_request(sender, conn_id, path, headers, body, json_headers=True)
    assert parse_message(as_tnet) == expected
    assert parse_message(as_json) == expected


# ----------------------------------------------------------------------------- (c) reply grammar

IDS = st.lists(st.integers(0, 2**64), min_size=1, max_size=MAX_TARGETS)


def assert_reply_grammar(message: bytes, sender: bytes, ids: list[int], body: bytes) -> None:
    match = REPLY_RE.match(message)
    assert match is not None
    assert match[1] == sender
    assert int(match[2]) == len(match[3])
    assert [int(i) for i in match[3].split(b" ")] == ids
    assert match[4] == body


@FUZZ
@given(SENDERS, IDS, st.binary(max_size=256))
def test_encode_reply_always_matches_mongrel2_grammar(
    sender: bytes, ids: list[int], body: bytes
) -> None:
    assert_reply_grammar(encode_reply(sender, ids, body), sender, ids, body)


@FUZZ
@given(SENDERS, st.lists(st.integers(0, 10**9), max_size=600), st.binary(max_size=32))
def test_encode_broadcast_messages_each_match_grammar(
    sender: bytes, ids: list[int], body: bytes
) -> None:
    messages = encode_broadcast(sender, ids, body)
    assert len(messages) == -(-len(ids) // MAX_TARGETS)
    for index, message in enumerate(messages):
        batch = ids[index * MAX_TARGETS : (index + 1) * MAX_TARGETS]
        assert_reply_grammar(message, sender, batch, body)


# ----------------------------------------------------------------------------- (d) ujson == json

JSON_TOKENS = ["{", "}", "[", "]", '"', ",", ":", "\\", "\\u", "\\ud800", "\\udc00", "\\u00e9"]
JSON_TOKENS += ["\\u0100", "0", "01", "-", "1e400", ".", "true", "null", "NaN", " ", "\t", "\x00"]
JSON_TOKENS += ["\x0c", "\x85", "\xa0", "\xff", "\\/", '\\"', "\\\\"]
JSON_CHARS = st.sampled_from(JSON_TOKENS) | LATIN1


def json_head(message: bytes) -> bytes:
    """The headers payload of a corpus message (JSON or tnetstring alike)."""
    length, _, tail = message.split(b" ", 3)[3].partition(b":")
    return tail[: int(length)]


JSON_HEADS = [head for head in map(json_head, MESSAGES) if head.startswith(b"{")]


def reference_headers(payload: bytes) -> dict[str, HeaderValue] | None:
    """What m2bridge must accept, decoded with the json module as MONGREL2.md 2.3 says."""
    try:
        decoded = json.loads(payload.decode("latin-1"), strict=False)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    for key, value in decoded.items():
        if not isinstance(value, str | list):
            return None
        texts = [key, *([value] if isinstance(value, str) else value)]
        if not all(isinstance(text, str) for text in texts):
            return None
        if any(char > "\xff" for text in texts for char in text):
            return None
    return decoded


@st.composite
def json_header_payloads(draw: st.DrawFn) -> bytes:
    text = list(draw(st.sampled_from(JSON_HEADS)).decode("latin-1"))
    for _ in range(draw(st.integers(0, 5))):
        index = draw(st.integers(0, len(text)))
        text[index : index + draw(st.integers(0, 3))] = [draw(JSON_CHARS)]
    return "".join(text).encode("latin-1")


@FUZZ
@given(json_header_payloads() | st.lists(JSON_CHARS, max_size=40).map("".join).map(str.encode))
def test_json_header_fast_path_agrees_with_json_module(payload: bytes) -> None:
    try:
        ours: dict[str, HeaderValue] | None = protocol._json_headers(payload)
    except ProtocolError:
        ours = None
    assert ours == reference_headers(payload)
