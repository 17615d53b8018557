"""Frame encoding, close codes and the 101 response of m2bridge.wire.websocket (RFC 6455)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2bridge.errors import ProtocolError
from m2bridge.wire.websocket import (
    CLOSE_NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    decode_frames,
    decode_text,
    encode_close_frame,
    encode_close_payload,
    encode_frame,
    encode_message,
    handshake_response,
    is_sendable_close_code,
    parse_close_payload,
)

# RFC 6455 section 5.7 examples (server side: unmasked).
RFC_CASES = [
    (OP_TEXT, b"Hello", True, b"\x81\x05Hello"),
    (OP_TEXT, b"Hel", False, b"\x01\x03Hel"),
    (OP_CONTINUATION, b"lo", True, b"\x80\x02lo"),
    (OP_PING, b"Hello", True, b"\x89\x05Hello"),
    (OP_PONG, b"Hello", True, b"\x8a\x05Hello"),
    (OP_BINARY, b"\x00" * 256, True, b"\x82\x7e\x01\x00" + b"\x00" * 256),
    (OP_BINARY, b"\x01" * 65536, True, b"\x82\x7f" + (65536).to_bytes(8, "big") + b"\x01" * 65536),
]


@pytest.mark.parametrize(("opcode", "payload", "fin", "expected"), RFC_CASES)
def test_encode_frame_matches_the_rfc_examples(opcode, payload, fin, expected):
    assert encode_frame(opcode, payload, fin) == expected


def test_length_boundaries_pick_the_shortest_form():
    assert encode_frame(OP_BINARY, b"x" * 125)[:2] == b"\x82\x7d"
    assert encode_frame(OP_BINARY, b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert encode_frame(OP_BINARY, b"x" * 65535)[:4] == b"\x82\x7e\xff\xff"


@pytest.mark.parametrize(
    ("opcode", "payload", "fin"),
    [(0x3, b"", True), (0xB, b"", True), (OP_PING, b"x" * 126, True), (OP_CLOSE, b"", False)],
)
def test_encode_frame_refuses_bad_frames(opcode, payload, fin):
    with pytest.raises(ProtocolError):
        encode_frame(opcode, payload, fin)


def test_encode_message_picks_text_for_str_and_binary_for_bytes():
    assert encode_message("é") == b"\x81\x02\xc3\xa9"
    assert encode_message(b"\xff") == b"\x82\x01\xff"
    with pytest.raises(TypeError, match="str or bytes"):
        encode_message(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "ok"),
    [(999, False), (1000, True), (1004, False), (1005, False), (1006, False), (1011, True),
     (1015, False), (2999, False), (3000, True), (4999, True), (5000, False)],
)  # fmt: skip
def test_sendable_close_codes_follow_rfc_6455(code, ok):
    assert is_sendable_close_code(code) is ok


def test_close_payload_round_trips():
    payload = encode_close_payload(1001, "bye é")
    assert payload == b"\x03\xe9bye \xc3\xa9"
    assert parse_close_payload(payload) == (1001, "bye é")
    assert encode_close_frame(1000) == b"\x88\x02\x03\xe8"


def test_empty_close_payload_means_no_status():
    assert parse_close_payload(b"") == (CLOSE_NO_STATUS, "")


@pytest.mark.parametrize("payload", [b"\x03", b"\x03\xed", b"\x00\x00", b"\x03\xe8\xff"])
def test_bad_close_payloads_are_protocol_errors(payload):
    with pytest.raises(ProtocolError):
        parse_close_payload(payload)


def test_close_payload_refuses_unsendable_codes_and_long_reasons():
    with pytest.raises(ProtocolError, match="1006"):
        encode_close_payload(1006)
    with pytest.raises(ProtocolError, match="123"):
        encode_close_payload(1000, "x" * 124)
    assert len(encode_close_payload(1000, "x" * 123)) == 125


def test_decode_text_refuses_invalid_utf8():
    assert decode_text("ok é".encode()) == "ok é"
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_text(b"\xc3(")


def test_handshake_response_is_what_mongrel2_leaves_to_the_handler():
    # Accept value of the captured handshake (MONGREL2.md 2.5), recomputed per RFC 6455.
    key = b"MDEyMzQ1Njc4OWFiY2RlZg=="
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    ).decode()
    assert accept == "BACScCJPNqyz+UBoqMH89VmURoA="
    assert handshake_response(accept) == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: BACScCJPNqyz+UBoqMH89VmURoA=\r\n\r\n"
    )
    assert b"Sec-WebSocket-Protocol: chat\r\n\r\n" in handshake_response(accept, "chat")


@pytest.mark.parametrize("accept", ["", "short", "BACScCJPNqyz+UBoqMH89VmURoA=\r\nX: y"])
def test_handshake_response_refuses_a_bad_accept_value(accept):
    with pytest.raises(ProtocolError):
        handshake_response(accept)


def test_handshake_response_refuses_a_subprotocol_that_is_not_a_token():
    with pytest.raises(ProtocolError, match="token"):
        handshake_response("BACScCJPNqyz+UBoqMH89VmURoA=", "a b")


def test_decode_frames_splits_a_stream_and_keeps_the_incomplete_tail():
    stream = encode_message("one") + encode_frame(OP_PING, b"p") + encode_message(b"x" * 300)
    frames, rest = decode_frames(stream[:-5])
    assert frames == [(OP_TEXT, True, b"one"), (OP_PING, True, b"p")]
    assert rest == stream[-304:-5]
    assert decode_frames(stream)[0][2] == (OP_BINARY, True, b"x" * 300)


def test_decode_frames_unmasks_client_frames():
    mask = b"\x37\xfa\x21\x3d"  # RFC 6455 5.7: a masked "Hello"
    assert decode_frames(b"\x81\x85" + mask + b"\x7f\x9f\x4d\x51\x58") == (
        [(OP_TEXT, True, b"Hello")],
        b"",
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from([OP_TEXT, OP_BINARY, OP_CONTINUATION]), st.binary(max_size=70000)
        ),
        max_size=4,
    )
)
def test_decode_frames_inverts_encode_frame(items):
    stream = b"".join(encode_frame(opcode, payload) for opcode, payload in items)
    assert decode_frames(stream) == ([(op, True, payload) for op, payload in items], b"")


@pytest.mark.parametrize("header", [b"\x82\x7e\x01", b"\x82\x7f\x00\x00\x00\x00\x00\x00\x01"])
def test_decode_frames_keeps_a_frame_whose_extended_length_is_cut_off_as_the_tail(header):
    whole = encode_message(b"ok")
    assert decode_frames(whole + header) == ([(OP_BINARY, True, b"ok")], header)
