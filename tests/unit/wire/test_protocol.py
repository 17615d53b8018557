"""Table-driven unit tests of wire.protocol: every event kind, every error path, encoders."""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

import pytest

from m2bridge.errors import ProtocolError
from m2bridge.wire.encode import (
    MAX_TARGETS,
    encode_broadcast,
    encode_close,
    encode_control,
    encode_reply,
    encode_request,
)
from m2bridge.wire.protocol import (
    Credits,
    Disconnect,
    Event,
    HeaderValue,
    JSONMessage,
    Request,
    StreamedRequest,
    UploadChunk,
    UploadDone,
    UploadStarted,
    WebSocketFrame,
    WebSocketHandshake,
    join_header,
    parse_message,
)

SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"
GET = {"METHOD": "GET", "VERSION": "HTTP/1.1", "PATH": "/p", "URI": "/p"}
REPLY_RE = re.compile(rb"([A-Za-z0-9-]+) ([0-9]+):([0-9]+(?: [0-9]+)*), (.*)\Z", re.DOTALL)


def tnet(headers: dict[str, Any], body: bytes = b"", path: str = "/p", conn_id: int = 7) -> bytes:
    return encode_request(SENDER, conn_id, path, headers, body, json_headers=False)


def jmsg(headers: dict[str, Any], body: bytes = b"", path: str = "/p", conn_id: int = 7) -> bytes:
    return encode_request(SENDER, conn_id, path, headers, body, json_headers=True)


def raw_msg(head: bytes, body: bytes = b"0:,", prefix: bytes = SENDER + b" 7 /p ") -> bytes:
    return prefix + head + body


def netstring(payload: bytes, tag: bytes = b",") -> bytes:
    return b"%d:%s%s" % (len(payload), payload, tag)


# ----------------------------------------------------------------------------- parse: events

WS = {**GET, "METHOD": "WEBSOCKET", "upgrade": "websocket"}
UPLOAD = {**GET, "METHOD": "POST", "x-mongrel2-upload-start": "/tmp/upload.AbC123"}

PARSE_CASES = [
    pytest.param(tnet(GET), Request(SENDER, 7, "/p", GET, b""), id="tnet-get"),
    pytest.param(jmsg(GET), Request(SENDER, 7, "/p", GET, b""), id="json-get"),
    pytest.param(
        tnet(GET, b"a\x00,b", conn_id=0),
        Request(SENDER, 0, "/p", GET, b"a\x00,b"),
        id="binary-body",
    ),
    pytest.param(
        tnet({"METHOD": "GET"}), Request(SENDER, 7, "/p", {"METHOD": "GET"}, b""), id="no-version"
    ),
    pytest.param(
        tnet({**GET, "cookie": ["a=1", "b=2"], "x-e": []}),
        Request(SENDER, 7, "/p", {**GET, "cookie": ["a=1", "b=2"], "x-e": []}, b""),
        id="lists",
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":"caf\\u00e9\\t"}')),
        Request(SENDER, 7, "/p", {"METHOD": "GET", "x": "caf\xe9\t"}, b""),
        id="json-latin1-escape",
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":"\\\\u2028"}')),
        Request(SENDER, 7, "/p", {"METHOD": "GET", "x": "\\u2028"}, b""),
        id="json-escaped-backslash-u",
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":"\xff\x01\\"\\\\"}')),
        Request(SENDER, 7, "/p", {"METHOD": "GET", "x": '\xff\x01"\\'}, b""),
        id="json-raw-bytes",
    ),
    pytest.param(
        tnet(UPLOAD),
        UploadStarted(SENDER, 7, "/p", UPLOAD, b"", "/tmp/upload.AbC123"),
        id="upload-start",
    ),
    pytest.param(
        tnet({**UPLOAD, "x-mongrel2-upload-done": "/tmp/upload.AbC123"}),
        UploadDone(
            SENDER,
            7,
            "/p",
            {**UPLOAD, "x-mongrel2-upload-done": "/tmp/upload.AbC123"},
            b"",
            "/tmp/upload.AbC123",
        ),
        id="upload-done",
    ),
    pytest.param(
        tnet({**GET, "UPLOAD_STREAM": "0"}, b"head"),
        StreamedRequest(SENDER, 7, "/p", {**GET, "UPLOAD_STREAM": "0"}, b"head"),
        id="streamed",
    ),
    pytest.param(
        tnet({"UPLOAD_STREAM": "4029"}, b"more"),
        UploadChunk(SENDER, 7, 4029, b"more", False),
        id="chunk",
    ),
    pytest.param(
        jmsg({"UPLOAD_STREAM_DONE": "1", "UPLOAD_STREAM": "11"}),
        UploadChunk(SENDER, 7, 11, b"", True),
        id="chunk-done",
    ),
    pytest.param(
        tnet({**GET, "METHOD": "WEBSOCKET_HANDSHAKE"}, b"acc="),
        WebSocketHandshake(SENDER, 7, "/p", {**GET, "METHOD": "WEBSOCKET_HANDSHAKE"}, b"acc="),
        id="ws-hs",
    ),
    pytest.param(
        tnet({**WS, "FLAGS": "0x81"}, b"hi"),
        WebSocketFrame(SENDER, 7, "/p", {**WS, "FLAGS": "0x81"}, b"hi", 0x81),
        id="ws-frame",
    ),
    pytest.param(
        tnet({**WS, "FLAGS": "8"}),
        WebSocketFrame(SENDER, 7, "/p", {**WS, "FLAGS": "8"}, b"", 8),
        id="ws-no-0x",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":"disconnect"}', "@*", 62),
        Disconnect(SENDER, 62),
        id="disconnect",
    ),
    pytest.param(
        jmsg({"METHOD": "JSON", "DOWNLOAD_CREDITS": "5041"}, b'{"type":"credits"}', "@*"),
        Credits(SENDER, 7, 5041),
        id="credits",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":"msg","msg":"hi"}', "@chat"),
        JSONMessage(SENDER, 7, "@chat", {"METHOD": "JSON"}, {"type": "msg", "msg": "hi"}),
        id="json-socket",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":"disconnect"}', "@chat"),
        JSONMessage(SENDER, 7, "@chat", {"METHOD": "JSON"}, {"type": "disconnect"}),
        id="disconnect-off-@*",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":"new"}', "@*"),
        JSONMessage(SENDER, 7, "@*", {"METHOD": "JSON"}, {"type": "new"}),
        id="unknown-notice",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, b"[1]", "@*"),
        JSONMessage(SENDER, 7, "@*", {"METHOD": "JSON"}, [1]),
        id="notice-not-object",
    ),
    pytest.param(
        tnet({"METHOD": "JSON"}, path="@*"),
        JSONMessage(SENDER, 7, "@*", {"METHOD": "JSON"}, None),
        id="notice-empty-body",
    ),
]


@pytest.mark.parametrize(("data", "event"), PARSE_CASES)
def test_parse_message_returns_event(data: bytes, event: Event) -> None:
    assert parse_message(data) == event


class BytesSubclass(bytes):
    pass


@pytest.mark.parametrize("kind", [bytearray, memoryview, BytesSubclass])
def test_parse_message_accepts_bytes_like(kind: type) -> None:
    event = parse_message(kind(tnet(GET)))
    assert event == parse_message(tnet(GET))
    assert type(event.sender) is bytes


@pytest.mark.parametrize("sender", [b"-", b"a", b"Z-9", b"09-AZ-az"])
def test_parse_message_accepts_every_sender_of_the_grammar(sender: bytes) -> None:
    event = parse_message(raw_msg(netstring(b"6:METHOD,3:GET,", b"}"), prefix=sender + b" 7 /p "))
    assert event == Request(sender, 7, "/p", {"METHOD": "GET"}, b"")


def test_plain_request_is_built_like_the_dataclass_would() -> None:
    # parse_message builds a plain Request without its __init__: it must set every field
    assert [field.name for field in dataclasses.fields(Request)] == [
        "sender",
        "conn_id",
        "path",
        "headers",
        "body",
    ]
    assert not hasattr(Request, "__post_init__")
    event = parse_message(tnet(GET, b"xy", path="/q", conn_id=5))
    expected = Request(SENDER, 5, "/q", GET, b"xy")
    assert type(event) is Request
    assert (event, repr(event)) == (expected, repr(expected))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.path = "/other"  # type: ignore[misc]


def test_json_headers_with_and_without_lists_parse_alike() -> None:
    plain = parse_message(jmsg(GET))
    repeated = parse_message(jmsg({**GET, "cookie": ["a=1", "b=2"]}))
    assert isinstance(plain, Request)
    assert isinstance(repeated, Request)
    assert plain.headers == GET
    assert repeated.headers == {**GET, "cookie": ["a=1", "b=2"]}


def test_tnetstring_and_json_headers_decode_alike_for_common_and_rare_names() -> None:
    # tnetstring names come as bytes: the usual ones are looked up, the rest decoded
    headers = {
        **GET,
        "host": "h:1",
        "user-agent": "w\xe9",
        "x-rare-name": "1",
        "content-type": ["a", "b"],
        "QUERY": "",
    }
    for body in (b"", b"0", b"0:,", b"x" * 10):
        tnet_event = parse_message(tnet(headers, body))
        json_event = parse_message(jmsg(headers, body))
        assert isinstance(tnet_event, Request)
        assert isinstance(json_event, Request)
        assert (tnet_event.headers, tnet_event.body) == (headers, body)
        assert (json_event.headers, json_event.body) == (headers, body)


# ----------------------------------------------------------------------------- parse: errors

DEEP = b"[" * 100_000
ERROR_CASES = [
    pytest.param("a str", "must be bytes", id="not-bytes"),
    pytest.param(SENDER + b" 7 /p", "fewer than four", id="three-fields"),
    pytest.param(b"bad_uuid 7 /p " + netstring(b"{}") + b"0:,", "sender", id="sender-underscore"),
    pytest.param(b" 7 /p 2:{},0:,", "sender", id="sender-empty"),
    pytest.param(b"a\xe9 7 /p 2:{},0:,", "sender", id="sender-latin1-letter"),
    pytest.param(
        raw_msg(b"2:{},", prefix=SENDER + b" x7 /p "), "connection id", id="conn-id-letters"
    ),
    pytest.param(
        raw_msg(b"2:{},", prefix=SENDER + b" -7 /p "), "connection id", id="conn-id-negative"
    ),
    pytest.param(
        raw_msg(b"2:{},", prefix=SENDER + b" " + b"9" * 21 + b" /p "),
        "connection id",
        id="conn-id-huge",
    ),
    pytest.param(raw_msg(b"{},"), "length is missing", id="no-length"),
    pytest.param(raw_msg(b"x2:{},"), "length is missing", id="length-not-digits"),
    pytest.param(raw_msg(b":{},"), "length is missing", id="length-empty"),
    pytest.param(raw_msg(b"1" * 13 + b":{},"), "length is missing", id="length-13-digits"),
    pytest.param(raw_msg(b"99:{},"), "shorter than its length", id="headers-truncated"),
    pytest.param(raw_msg(b"2:{}", b""), "shorter than its length", id="headers-exact-end"),
    pytest.param(raw_msg(b"2:{}]"), "neither a tnetstring dict nor", id="headers-list-tag"),
    pytest.param(raw_msg(b"4:1:a,}"), "bad tnetstring headers", id="tnet-dict-odd"),
    pytest.param(  # the item would be whole with the bytes after the dict: they do not count
        raw_msg(b"7:1:a,3:b}", b"x,"), "bad tnetstring headers", id="tnet-item-past-dict"
    ),
    pytest.param(raw_msg(b"8:1:1#1:a,}"), "header name is not a string", id="tnet-int-key"),
    pytest.param(raw_msg(b"11:1:a,4:true!}"), "neither a string nor a list", id="tnet-bool-value"),
    pytest.param(raw_msg(b"11:1:a,4:1:1#]}"), "neither a string nor a list", id="tnet-list-of-int"),
    pytest.param(raw_msg(netstring(b'{"a":')), "bad JSON headers", id="json-truncated"),
    pytest.param(raw_msg(netstring(DEEP)), "nested too deeply", id="json-deep"),
    pytest.param(raw_msg(netstring(b"[]")), "not an object", id="json-array"),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":1}')), "neither a string nor a list", id="json-int-value"
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":["a",null]}')),
        "neither a string",
        id="json-list-null",
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":"\\u0100"}')), "beyond latin-1", id="json-u-value"
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","\\ud800":"x"}')), "beyond latin-1", id="json-u-key"
    ),
    pytest.param(
        raw_msg(netstring(b'{"METHOD":"GET","x":["a","\\u20ac"]}')),
        "beyond latin-1",
        id="json-u-item",
    ),
    pytest.param(raw_msg(b"2:{},", b"3:ab,"), "shorter than its length", id="body-short"),
    pytest.param(raw_msg(b"2:{},", b"2:ab;"), "does not end with", id="body-terminator"),
    pytest.param(raw_msg(b"2:{},", b""), "length is missing", id="body-missing"),
    pytest.param(raw_msg(b"2:{},", b"0:,x"), "trailing bytes", id="body-trailing"),
    pytest.param(raw_msg(b"2:{},", b"1:,"), "shorter than its length", id="body-eats-comma"),
    pytest.param(raw_msg(b"2:{},", b"0:,,"), "1 trailing bytes", id="body-extra-comma"),
    pytest.param(raw_msg(b"2:{},", b"0,"), "length is missing", id="body-no-colon"),
    pytest.param(tnet({"VERSION": "HTTP/1.1"}), "METHOD header is missing", id="no-method"),
    pytest.param(
        tnet({"METHOD": ["GET", "PUT"]}), "METHOD header is missing or repeated", id="method-list"
    ),
    pytest.param(tnet({"METHOD": "GE T"}), "invalid method", id="method-space"),
    pytest.param(tnet({"METHOD": ""}), "invalid method", id="method-empty"),
    pytest.param(tnet({"METHOD": "GET", "VERSION": "HTTP/2"}), "VERSION", id="version-2"),
    pytest.param(tnet({"METHOD": "GET", "VERSION": ["HTTP/1.1"]}), "VERSION", id="version-list"),
    pytest.param(tnet(WS), "without a FLAGS", id="ws-no-flags"),
    pytest.param(tnet({**WS, "FLAGS": ["0x81"]}), "without a FLAGS", id="ws-flags-list"),
    pytest.param(tnet({**WS, "FLAGS": "0x1ff"}), "hex byte", id="ws-flags-wide"),
    pytest.param(tnet({**WS, "FLAGS": " 81"}), "hex byte", id="ws-flags-space"),
    pytest.param(tnet({**WS, "FLAGS": "zz"}), "hex byte", id="ws-flags-letters"),
    pytest.param(
        tnet({**UPLOAD, "x-mongrel2-upload-start": ""}), "repeated or empty", id="upload-empty"
    ),
    pytest.param(
        tnet({**GET, "x-mongrel2-upload-done": ["/a", "/b"]}), "repeated or empty", id="upload-list"
    ),
    pytest.param(tnet({"UPLOAD_STREAM": "-1"}), "UPLOAD_STREAM is not", id="chunk-negative"),
    pytest.param(
        tnet({"UPLOAD_STREAM": "\xb2"}), "UPLOAD_STREAM is not", id="chunk-superscript-digit"
    ),
    pytest.param(tnet({"UPLOAD_STREAM": "1" * 21}), "UPLOAD_STREAM is not", id="chunk-huge"),
    pytest.param(tnet({"UPLOAD_STREAM": ["1"]}), "UPLOAD_STREAM is not", id="chunk-list"),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":', "@*"), "bad JSON message body", id="notice-bad-json"
    ),
    pytest.param(tnet({"METHOD": "JSON"}, DEEP, "@*"), "nested too deeply", id="notice-deep"),
    pytest.param(
        tnet({"METHOD": "JSON"}, b'{"type":"credits"}', "@*"),
        "DOWNLOAD_CREDITS",
        id="credits-missing",
    ),
    pytest.param(
        tnet({"METHOD": "JSON", "DOWNLOAD_CREDITS": "1.5"}, b'{"type":"credits"}', "@*"),
        "DOWNLOAD_CREDITS",
        id="credits-not-int",
    ),
]


@pytest.mark.parametrize(("data", "message"), ERROR_CASES)
def test_parse_message_rejects_malformed_input(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)) as info:
        parse_message(data)
    assert info.value.error_status_hint == 400


# ----------------------------------------------------------------------------- event helpers


def test_request_properties_and_header_join() -> None:
    headers: dict[str, HeaderValue] = {**GET, "cookie": ["a=1", "b=2"], "x-foo": ["a", "b"]}
    headers["accept"] = "*/*"
    request = Request(SENDER, 1, "/p", dict(headers), b"")
    assert (request.method, request.version) == ("GET", "HTTP/1.1")
    assert request.header("cookie") == "a=1; b=2"
    assert request.header("x-foo") == "a, b"
    assert request.header("accept") == "*/*"
    assert request.header("missing") is None
    bare = Request(SENDER, 1, "/p", {}, b"")
    assert (bare.method, bare.version) == ("", "HTTP/1.0")


def test_join_header_uses_semicolon_only_for_cookie() -> None:
    assert join_header("Cookie", ["a", "b"]) == "a; b"
    assert join_header("x-dup", ["0", "1", "2"]) == "0, 1, 2"
    assert join_header("x-dup", []) == ""


@pytest.mark.parametrize(
    ("flags", "opcode"), [(0x81, 1), (0x82, 2), (0x88, 8), (0x89, 9), (0x00, 0)]
)
def test_websocket_frame_opcode_is_low_nibble(flags: int, opcode: int) -> None:
    assert WebSocketFrame(SENDER, 1, "/ws", {}, b"", flags).opcode == opcode


# ----------------------------------------------------------------------------- encoding replies


class Target(enum.IntEnum):
    SECOND = 2


REPLY_CASES = [
    pytest.param(
        SENDER,
        [14],
        b"HTTP/1.1 200 OK\r\n\r\n",
        SENDER + b" 2:14, HTTP/1.1 200 OK\r\n\r\n",
        id="one",
    ),
    pytest.param(b"a-1", [81, 82, 83], b"x", b"a-1 8:81 82 83, x", id="three"),
    pytest.param(b"a", [0], b"", b"a 1:0, ", id="close"),
    pytest.param(b"-", [2**64], b"", b"- 20:18446744073709551616, ", id="huge-id"),
    pytest.param(b"a", [Target.SECOND], b"z", b"a 1:2, z", id="one-int-enum"),
    pytest.param(b"a", [Target.SECOND, 3], b"z", b"a 3:2 3, z", id="int-enum"),
    pytest.param(b"a", (i for i in (5, 6)), b"\x00", b"a 3:5 6, \x00", id="generator"),
    pytest.param(
        b"a",
        range(MAX_TARGETS),
        b"y",
        b"a %d:%s, y"
        % (
            len(b" ".join(b"%d" % i for i in range(MAX_TARGETS))),
            b" ".join(b"%d" % i for i in range(MAX_TARGETS)),
        ),
        id="128-ids",
    ),
]


@pytest.mark.parametrize(("sender", "ids", "body", "expected"), REPLY_CASES)
def test_encode_reply_builds_mongrel2_reply(
    sender: bytes, ids: Any, body: bytes, expected: bytes
) -> None:
    assert encode_reply(sender, ids, body) == expected


REPLY_ERRORS = [
    pytest.param(b"bad_uuid", [1], "sender", id="underscore"),
    pytest.param(b"", [1], "sender", id="empty-sender"),
    pytest.param("54c6755b", [1], "sender", id="str-sender"),
    pytest.param(b"a b", [1], "sender", id="space-in-sender"),
    pytest.param(b"a\xff", [1], "sender", id="high-byte-sender"),
    pytest.param(bytearray(b"a"), [1], "sender", id="bytearray-sender"),
    pytest.param(b"a", [], "at least one", id="no-ids"),
    pytest.param(b"a", range(MAX_TARGETS + 1), "at most 128", id="129-ids"),
    pytest.param(b"a", [-1], "invalid connection id", id="negative"),
    pytest.param(b"a", [True], "invalid connection id", id="bool"),
    pytest.param(b"a", ["1"], "invalid connection id", id="str-id"),
]


@pytest.mark.parametrize(("sender", "ids", "message"), REPLY_ERRORS)
def test_encode_reply_rejects_what_mongrel2_would_drop(sender: Any, ids: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        encode_reply(sender, ids, b"body")
    assert info.value.error_status_hint == 500


def test_encode_close_is_an_empty_reply() -> None:
    assert encode_close(SENDER, [33]) == SENDER + b" 2:33, "
    assert encode_close(b"a", [1, 2]) == b"a 3:1 2, "


def test_encode_broadcast_splits_into_messages_of_128_ids() -> None:
    ids = list(range(1000, 1300))
    messages = encode_broadcast(SENDER, ids, b"hi")
    batches: list[list[int]] = []
    for message in messages:
        match = REPLY_RE.match(message)
        assert match is not None
        assert int(match[2]) == len(match[3])
        assert match[4] == b"hi"
        batches.append([int(i) for i in match[3].split(b" ")])
    assert [len(batch) for batch in batches] == [128, 128, 44]
    assert [i for batch in batches for i in batch] == ids
    assert encode_broadcast(SENDER, [], b"hi") == []
    assert encode_broadcast(SENDER, iter([5]), b"x") == [encode_reply(SENDER, [5], b"x")]


def test_encode_control_matches_captured_credit_grant() -> None:
    captured = b"54c6755b-9628-40a4-9a2d-cc82a816345e 3:X 2, 28:3:ctl,18:7:credits,5:30000#}]"
    assert encode_control(SENDER, 2, {"credits": 30000}) == captured


def test_encode_control_keep_alive_and_errors() -> None:
    assert (
        encode_control(b"a", 12, {"keep-alive": True})
        == b"a 4:X 12, 31:3:ctl,21:10:keep-alive,4:true!}]"
    )
    with pytest.raises(ProtocolError, match="sender"):
        encode_control(b"bad_uuid", 1, {"cancel": True})
    with pytest.raises(ProtocolError, match="invalid connection id"):
        encode_control(b"a", -2, {"cancel": True})


# ----------------------------------------------------------------------------- encode_request


def test_encode_request_writes_mongrel2_json_escaping_only_quote_and_backslash() -> None:
    headers = {"METHOD": "GET", "x": 'a"b\\c\td\xe9', "cookie": ["a=1", "b=2"]}
    expected_head = b'{"METHOD":"GET","x":"a\\"b\\\\c\td\xe9","cookie":["a=1","b=2"]}'
    assert jmsg(headers, b"xy") == SENDER + b" 7 /p " + netstring(expected_head) + b"2:xy,"


def test_encode_request_keeps_tnetstring_header_order() -> None:
    expected = SENDER + b" 7 /p 30:6:METHOD,3:GET,1:x,8:1:a,1:b,]}0:,"
    assert tnet({"METHOD": "GET", "x": ["a", "b"]}) == expected


@pytest.mark.parametrize(
    ("headers", "path", "sender"),
    [
        ({"x": "\u20ac"}, "/p", SENDER),
        ({"\u20ac": "x"}, "/p", SENDER),
        ({"x": ["\u0100"]}, "/p", SENDER),
        ({}, "/\u20ac", SENDER),
        ({}, "/p", b"bad_uuid"),
    ],
)
def test_encode_request_rejects_what_mongrel2_cannot_send(
    headers: Any, path: str, sender: bytes
) -> None:
    with pytest.raises(ProtocolError) as info:
        encode_request(sender, 1, path, headers, b"", json_headers=True)
    assert info.value.error_status_hint == 500
