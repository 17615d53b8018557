"""The golden corpus: real Mongrel2 1.12.2 messages (tests/data/requests) parse as expected.

Each ``NAME.tnet`` / ``NAME.json`` holds the raw bytes one Mongrel2 server pushed for the same
HTTP request (``capture.py`` beside them recorded them); ``NAME.expected.json`` is the event.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from m2bridge.wire.encode import encode_request
from m2bridge.wire.protocol import (
    Credits,
    Disconnect,
    Event,
    JSONMessage,
    Request,
    StreamedRequest,
    UploadChunk,
    UploadDone,
    UploadStarted,
    WebSocketFrame,
    WebSocketHandshake,
    parse_message,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "requests"


def as_jsonable(event: Event) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        fields[field.name] = value.decode("latin-1") if isinstance(value, bytes) else value
    return {"type": type(event).__name__, "fields": fields}


def expected_for(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.with_suffix(".expected.json").read_text("utf-8"))
    if path.suffix == ".json":
        record["fields"].update(record.pop("json_overrides", {}))
    record.pop("json_overrides", None)
    return record


CORPUS_FILES = sorted(
    p for p in [*CORPUS.glob("*.tnet"), *CORPUS.glob("*.json")] if ".expected" not in p.suffixes
)
PAIRS = sorted(
    {p.stem for p in CORPUS_FILES if p.suffix == ".json"}
    & {p.stem for p in CORPUS_FILES if p.suffix == ".tnet"}
)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_parses_to_expected_event(path: Path) -> None:
    assert as_jsonable(parse_message(path.read_bytes())) == expected_for(path)


def _without_run_specifics(event: Event) -> Event:
    """Drop what differs between two Mongrel2 servers: the sender and mkstemp file names."""
    if isinstance(event, UploadStarted | UploadDone):
        temp = event.upload_path
        headers = {k: "<temp>" if v == temp else v for k, v in event.headers.items()}
        event = dataclasses.replace(event, upload_path="<temp>", headers=headers)
    return dataclasses.replace(event, sender=b"")


@pytest.mark.parametrize("name", PAIRS)
def test_corpus_json_and_tnetstring_variants_parse_equal(name: str) -> None:
    from_json = parse_message((CORPUS / f"{name}.json").read_bytes())
    from_tnet = parse_message((CORPUS / f"{name}.tnet").read_bytes())
    assert _without_run_specifics(from_json) == _without_run_specifics(from_tnet)


NOT_REQUESTS = {"Disconnect", "Credits", "UploadChunk", "JSONMessage"}
REQUEST_FILES = [p for p in CORPUS_FILES if expected_for(p)["type"] not in NOT_REQUESTS]


@pytest.mark.parametrize("path", REQUEST_FILES, ids=lambda p: p.name)
def test_corpus_requests_reencode_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    event = parse_message(raw)
    assert isinstance(event, Request)
    fields = (event.sender, event.conn_id, event.path, event.headers, event.body)
    assert encode_request(*fields, json_headers=path.suffix == ".json") == raw


def test_corpus_covers_every_event_type_and_both_protocols() -> None:
    kinds = {expected_for(p)["type"] for p in CORPUS_FILES}
    everything = {
        Request,
        UploadStarted,
        UploadDone,
        StreamedRequest,
        UploadChunk,
        WebSocketHandshake,
        WebSocketFrame,
        Disconnect,
        Credits,
        JSONMessage,
    }
    assert kinds == {cls.__name__ for cls in everything}
    assert len(PAIRS) >= 40
    assert len(CORPUS_FILES) == 2 * len(PAIRS)
