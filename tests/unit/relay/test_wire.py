"""The words between relay and worker: grants encode and parse back, anything else is refused."""

from __future__ import annotations

import pytest

from m2bridge.relay.wire import BYE_ACK_FRAMES, Grant, encode_grant, is_bye, parse_grant


@pytest.mark.parametrize(
    ("credits", "source", "idle"), [(32, 0, False), (8, 3, True), (0, 0, False)]
)
def test_encode_grant_parses_back_to_the_same_grant(credits, source, idle):
    assert parse_grant(encode_grant(credits, source, idle=idle)) == Grant(credits, source, idle)


def test_encode_grant_bytes_are_verb_credits_source():
    assert encode_grant(32, 1) == b"ready 32 1"
    assert encode_grant(5, 0, idle=True) == b"idle 5 0"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"ready",
        b"ready 1",
        b"ready 1 2 3",
        b"go 1 2",
        b"ready -1 0",
        b"ready 1 x",
        b"ready 1234567890 0",  # more credit digits than a worker ever grants
        b"READY 1 0",
    ],
)
def test_parse_grant_refuses_anything_but_ready_or_idle_with_two_counts(frame):
    assert parse_grant(frame) is None


def test_parse_grant_accepts_nine_credit_digits():
    assert parse_grant(b"ready 999999999 2") == Grant(999_999_999, 2, False)


def test_is_bye_is_one_frame_saying_bye():
    assert is_bye([b"bye"])
    assert is_bye([b" bye\n"])
    assert not is_bye([b"bye", b"x"])
    assert not is_bye([b"bye-ack"])
    assert not is_bye([])


def test_bye_ack_starts_with_an_empty_frame_no_mongrel2_message_can_be():
    assert BYE_ACK_FRAMES == (b"", b"bye-ack")
