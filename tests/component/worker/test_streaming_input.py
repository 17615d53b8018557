"""streaming_input: a wsgi.input fed piece by piece, granting Mongrel2 credits as it is read."""

from __future__ import annotations

import gevent
import pytest

from m2bridge.worker.streaming_input import (
    WINDOW,
    ClientDisconnected,
    StreamingInput,
    UploadStreams,
)


def make(initial=b""):
    grants: list[int] = []
    return StreamingInput(initial, grants.append), grants


def test_initial_window_is_granted_and_reads_wait_for_pieces():
    body, grants = make(b"abc")
    assert grants == [WINDOW]
    assert body.read(10) == b"abc"
    reader = gevent.spawn(body.read, 10)
    gevent.sleep(0)  # the reader runs until it waits for a piece
    assert not reader.ready()
    body.feed(3, b"def", done=False)
    assert reader.get(timeout=1) == b"def"
    body.feed(6, b"g", done=True)
    assert body.read() == b"g"
    assert body.read() == b""


def test_read_all_and_lines_span_pieces():
    body, _ = make(b"one\ntw")
    gevent.spawn_later(0.01, body.feed, 6, b"o\nthree", True)
    assert body.readline() == b"one\n"
    assert list(body) == [b"two\n", b"three"]


def test_consumed_bytes_are_granted_again():
    body, grants = make()
    body.feed(0, b"x" * WINDOW, done=False)
    body.read(WINDOW // 2)
    assert grants == [WINDOW, WINDOW // 2]


def test_a_gap_or_abort_makes_reads_raise():
    body, _ = make(b"ab")
    body.feed(5, b"late", done=False)
    assert body.read(2) == b"ab"
    with pytest.raises(ClientDisconnected, match="offset 5"):
        body.read(1)
    other, _ = make()
    reader = gevent.spawn(other.read)
    gevent.sleep(0)  # the reader runs until it waits for a piece
    assert not reader.ready()
    other.abort()
    with pytest.raises(ClientDisconnected):
        reader.get(timeout=1)


def test_no_credits_are_granted_after_the_stream_ended():
    body, grants = make()
    body.abort()
    body.feed(0, b"x" * WINDOW, done=False)
    with pytest.raises(ClientDisconnected):
        body.read(WINDOW)
    assert grants == [WINDOW]


def test_registry_feeds_the_open_body_and_forgets_it_when_done():
    streams = UploadStreams()
    body = streams.open((0, 1), b"a", lambda n: None)
    assert streams.feed((0, 1), 1, b"b", done=True)
    assert len(streams) == 0
    assert not streams.feed((0, 1), 2, b"c", done=True)
    assert body.read() == b"ab"
