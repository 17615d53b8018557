"""The words between relay and worker: grants encode and parse back, anything else is refused."""

from __future__ import annotations

import pytest

from m2bridge.relay.wire import (
    BYE_ACK_FRAMES,
    MAX_DONE,
    Grant,
    Start,
    count_frames,
    encode_go,
    encode_grant,
    encode_start,
    is_bye,
    parse_count,
    parse_go,
    parse_grant,
    parse_start,
    relay_sources,
)


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


def test_relay_sources_one_relay_serves_every_channel_as_its_nth_source():
    assert relay_sources(("ipc:///r",), 3) == [("ipc:///r", 0), ("ipc:///r", 1), ("ipc:///r", 2)]


def test_relay_sources_one_relay_per_front_end_is_each_relays_first_source():
    fronts = ("tcp://10.0.0.1:9", "tcp://10.0.0.2:9")
    assert relay_sources(fronts, 2) == [(fronts[0], 0), (fronts[1], 0)]


def test_relay_sources_a_relay_named_twice_counts_its_earlier_channels():
    relays = ("ipc:///a", "ipc:///b", "ipc:///a")
    assert relay_sources(relays, 3) == [("ipc:///a", 0), ("ipc:///b", 0), ("ipc:///a", 1)]


@pytest.mark.parametrize(
    ("relays", "channels"),
    [(("ipc:///a", "ipc:///b"), 3), ((), 2)],
    ids=["two relays for three channels", "no relay"],
)
def test_relay_sources_neither_one_nor_one_per_channel_is_refused(relays, channels):
    with pytest.raises(ValueError, match="one per recv_spec"):
        relay_sources(relays, channels)


def test_relay_sources_for_no_channel_is_refused():
    with pytest.raises(ValueError, match="one per recv_spec"):
        relay_sources(("ipc:///a",), 0)


def test_encode_start_parses_back_to_its_count_and_finished_connections():
    frame = encode_start(9, 17, [(5, 17), (12, 3)])
    assert frame == b"start 9 17 5:17 12:3"
    assert parse_start(frame) == Start(9, 17, ((b"5", 17), (b"12", 3)))


def test_a_start_with_no_finished_connection_parses_empty():
    assert parse_start(encode_start(1, 0, [])) == Start(1, 0, ())


@pytest.mark.parametrize(
    "frame",
    [b"start", b"start 1", b"start x 1", b"start 1 x 1:2", b"start 1 1 1", b"start 1 1 a:2",
     b"start 1 1 1:b", b"start 1 1 1:" + b"9" * 19, b"start 1 " + b"9" * 19, b"ready 8 0",
     b"start 1 0 " + b" ".join([b"1:1"] * (MAX_DONE + 1))],
    ids=["nothing", "no count", "bad generation", "bad count", "no seq", "bad id", "bad seq",
         "seq too long", "count too long", "a grant", "too many"],
)  # fmt: skip
def test_parse_start_refuses_anything_else(frame):
    assert parse_start(frame) is None


def test_go_parses_back_and_other_words_are_not_go():
    blank, control = encode_go(42)
    assert blank == b""
    assert parse_go(control) == 42
    assert parse_go(b"go") is None
    assert parse_go(b"go x") is None
    assert parse_go(b"bye-ack") is None


def test_count_frames_say_whether_the_worker_waits_for_go_and_parse_back():
    assert count_frames(False, 7) == (b"", b"count 7")
    assert count_frames(True, 7) == (b"", b"count start 7")
    assert parse_count(count_frames(False, 7)[1]) == (False, 7)
    assert parse_count(count_frames(True, 12)[1]) == (True, 12)


@pytest.mark.parametrize(
    "control",
    [b"count", b"count x", b"count start", b"count stop 1", b"count start 1 2", b"bye-ack",
     b"count " + b"9" * 19],
    ids=["no generation", "bad generation", "start, no generation", "not start",
         "too many", "another word", "generation too long"],
)  # fmt: skip
def test_parse_count_refuses_anything_else(control):
    assert parse_count(control) is None
