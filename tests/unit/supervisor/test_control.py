"""The control protocol framing: requests and responses round-trip; bad bytes are ControlErrors."""

from __future__ import annotations

import json

import pytest

from m2bridge.errors import ControlError
from m2bridge.supervisor import control
from m2bridge.supervisor.control import ControlRequest, Errno


def test_request_round_trips():
    request = ControlRequest(7, "incr", {"name": "hello", "n": 2})
    assert control.decode_request(control.encode_request(request)) == request


def test_request_with_token_round_trips():
    request = ControlRequest(1, "list", {}, token="s3cret")
    data = control.encode_request(request)
    assert json.loads(data)["token"] == "s3cret"
    assert control.decode_request(data) == request


def test_request_without_token_has_no_token_field():
    assert "token" not in json.loads(control.encode_request(ControlRequest(1, "list")))


def test_request_args_default_to_empty():
    assert control.decode_request(b'{"id": 3, "command": "list"}') == ControlRequest(3, "list")


def test_ok_response_round_trips():
    response = control.ok(4, {"watchers": ["a"]})
    assert json.loads(control.encode_response(response)) == {
        "id": 4,
        "status": "ok",
        "data": {"watchers": ["a"]},
    }
    assert control.decode_response(control.encode_response(response)) == response


def test_error_response_round_trips_with_errno():
    response = control.error(5, "no watcher named 'x'", Errno.NO_SUCH_WATCHER)
    decoded = control.decode_response(control.encode_response(response))
    assert decoded == response
    assert not decoded.ok
    assert decoded.errno == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"command": "list"}', "no integer 'id'"),
        (b'{"id": true, "command": "list"}', "no integer 'id'"),
        (b'{"id": 1}', "no 'command'"),
        (b'{"id": 1, "command": ""}', "no 'command'"),
        (b'{"id": 1, "command": "x", "args": []}', "'args' is not an object"),
        (b'{"id": 1, "command": "x", "token": 5}', "'token' is not a string"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100000, "larger than"),
        (b"[" * 60000, "not JSON"),
    ],
)
def test_malformed_request_is_a_bad_message(data, message):
    with pytest.raises(ControlError, match=message) as info:
        control.decode_request(data)
    assert info.value.errno == Errno.BAD_MESSAGE


@pytest.mark.parametrize(
    "data",
    [b"{}", b'{"id": 1, "status": "maybe"}', b'{"id": 1, "status": "ok", "data": 3}', b"nope"],
)
def test_malformed_response_is_a_bad_message(data):
    with pytest.raises(ControlError) as info:
        control.decode_response(data)
    assert info.value.errno == Errno.BAD_MESSAGE


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b'{"id": 9, "command": 3}', 9), (b"garbage", 0), (b'{"id": "x"}', 0), (b"[1]", 0)],
)
def test_request_id_is_recovered_from_a_bad_request_when_possible(data, expected):
    assert control.request_id(data) == expected
