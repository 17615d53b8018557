"""The fake Mongrel2 speaks Mongrel2's exact bytes: its frames against real 1.12.2 captures.

The captures are the unprefixed files of ``tests/data/requests`` (recorded live from
``mongrel2-core 1.12.2`` by ``capture.py``, one server per handler protocol; the same messages
as ``/work/shared/mongrel2-captures``): compact JSON, Mongrel2's own header keys where it puts
them, its header hash in JSON's order and reversed in a tnetstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from m2bridge.testing import (
    encode_message,
    make_disconnect_frame,
    make_json_frame,
    make_request_frame,
)
from m2bridge.wire.protocol import Request, parse_message

CORPUS = Path(__file__).resolve().parents[1] / "data" / "requests"
SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"
PROTOCOLS = {"json": ".json", "tnetstring": ".tnet"}


def captured(name: str, protocol: str) -> bytes:
    return (CORPUS / f"{name}{PROTOCOLS[protocol]}").read_bytes()


REQUESTS: dict[str, dict[str, Any]] = {
    "get_query": {
        "path": "/sub/path",
        "conn_id": 2,
        "query": "a=1&b=two%20x&c=%C3%A9",
        "headers": {"accept": "*/*", "user-agent": "probe"},
    },
    "post_form": {
        "path": "/form",
        "conn_id": 11,
        "method": "POST",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "body": b"a=1&b=hello+world&c=%26",
    },
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", REQUESTS)
def test_request_frames_are_mongrel2s_bytes(name: str, protocol: str) -> None:
    frame = make_request_frame(sender=SENDER, protocol=protocol, **REQUESTS[name])
    assert frame == captured(name, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_notices_and_json_socket_messages_are_mongrel2s_bytes(protocol: str) -> None:
    disconnect = make_disconnect_frame(23, sender=SENDER, protocol=protocol)
    credits = make_json_frame(
        "@*", {"type": "credits"}, conn_id=2, headers={"DOWNLOAD_CREDITS": "40"},
        sender=SENDER, protocol=protocol,
    )  # fmt: skip
    chat = make_json_frame(
        "@chat", {"type": "msg", "msg": "hi"}, conn_id=27, sender=SENDER, protocol=protocol
    )
    assert disconnect == captured("disconnect", protocol)
    assert credits == captured("credits", protocol)
    assert chat == captured("json_socket_msg", protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upload_stream_pieces_are_mongrel2s_bytes(protocol: str) -> None:
    headers = {"UPLOAD_STREAM": "11", "UPLOAD_STREAM_DONE": "1"}
    frame = encode_message(SENDER, 2, "/us", headers, b"", protocol)
    assert frame == captured("stream_done", protocol)


def is_live_request(path: Path) -> bool:
    """A request captured live whose two variants hold the same bytes (an upload's temp
    file name differs between the two servers)."""
    if path.name.endswith(".expected.json") or path.name.startswith(("shared_", "upload_")):
        return False
    return isinstance(parse_message(path.read_bytes()), Request)


PAIRS = sorted(path.stem for path in CORPUS.glob("*.json") if is_live_request(path))


@pytest.mark.parametrize("name", PAIRS)
def test_one_request_encodes_as_both_captured_variants(name: str) -> None:
    event = parse_message(captured(name, "json"))
    assert isinstance(event, Request)
    fields = (event.sender, event.conn_id, event.path, event.headers, event.body)
    for protocol in PROTOCOLS:
        assert encode_message(*fields, protocol) == captured(name, protocol)


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        encode_message(SENDER, 1, "/", {}, b"", "xml")
