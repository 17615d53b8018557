"""UploadTracker: which connection announced which temp file (pure bookkeeping)."""

from __future__ import annotations

from m2bridge.testing import make_request_frame
from m2bridge.wire.protocol import UploadDone, UploadStarted, parse_message
from m2bridge.wire.uploads import UploadTracker

KEY = (0, 24)


def start(path: str = "/tmp/upload.a", conn_id: int = 24) -> UploadStarted:
    frame = make_request_frame(
        "/up",
        conn_id=conn_id,
        method="POST",
        headers={"x-mongrel2-upload-start": path, "content-length": "30720"},
    )
    event = parse_message(frame)
    assert isinstance(event, UploadStarted)
    return event


def done(path: str = "/tmp/upload.a", conn_id: int = 24) -> UploadDone:
    frame = make_request_frame(
        "/up",
        conn_id=conn_id,
        method="POST",
        headers={
            "x-mongrel2-upload-start": path,
            "x-mongrel2-upload-done": path,
            "content-length": "30720",
        },
    )
    event = parse_message(frame)
    assert isinstance(event, UploadDone)
    return event


def test_holds_tells_whether_the_announced_path_still_waits_for_its_done() -> None:
    tracker = UploadTracker()
    assert not tracker.holds(KEY, "/tmp/upload.a")
    assert tracker.start(KEY, start())
    assert tracker.holds(KEY, "/tmp/upload.a")
    assert not tracker.holds(KEY, "/tmp/upload.b")
    assert not tracker.holds((1, 24), "/tmp/upload.a")
    assert tracker.claim(KEY, done())
    assert not tracker.holds(KEY, "/tmp/upload.a")


def test_a_start_seen_again_after_its_done_is_not_taken_when_claims_are_remembered() -> None:
    tracker = UploadTracker(remember_claims=4)
    assert tracker.start(KEY, start())
    assert tracker.claim(KEY, done())
    assert not tracker.start(KEY, start())  # a sibling's replay of what was served here
    assert len(tracker) == 0
    assert not tracker.claim(KEY, done())
    assert tracker.start(KEY, start("/tmp/upload.b"))  # the next upload of the connection


def test_without_remembered_claims_a_start_after_its_done_is_taken_again() -> None:
    tracker = UploadTracker()
    assert tracker.start(KEY, start())
    assert tracker.claim(KEY, done())
    assert tracker.start(KEY, start())


def test_remembered_claims_are_bounded_oldest_first() -> None:
    tracker = UploadTracker(remember_claims=2)
    for conn_id in (1, 2, 3):
        key = (0, conn_id)
        assert tracker.start(key, start(conn_id=conn_id))
        assert tracker.claim(key, done(conn_id=conn_id))
    assert tracker.start((0, 1), start(conn_id=1))  # forgotten: the oldest of three
    assert not tracker.start((0, 3), start(conn_id=3))
