"""UploadTracker: which connection announced which temp file (pure bookkeeping)."""

from __future__ import annotations

import pytest

from m2bridge.testing import make_request_frame
from m2bridge.wire.protocol import UploadDone, UploadStarted, parse_message
from m2bridge.wire.uploads import UploadTracker, is_plausible_start

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


def announced(headers: dict[str, str], body: bytes = b"") -> UploadStarted:
    return UploadStarted(b"uuid", 24, "/up", dict(headers), body, upload_path="/tmp/upload.a")


def test_a_start_with_a_body_is_not_mongrel2s() -> None:
    assert not is_plausible_start(announced({"content-length": "30720"}, b"x"))


def test_a_chunked_start_is_plausible_in_any_case_of_the_header() -> None:
    assert is_plausible_start(announced({"transfer-encoding": "Chunked"}))


@pytest.mark.parametrize(
    ("length", "plausible"), [("30720", True), ("0", False), ("-5", False), ("", False)]
)
def test_a_start_needs_a_positive_content_length_when_not_chunked(
    length: str, plausible: bool
) -> None:
    assert is_plausible_start(announced({"content-length": length})) is plausible


def test_an_implausible_start_is_not_tracked() -> None:
    tracker = UploadTracker()
    assert not tracker.start(KEY, announced({"content-length": "6"}, b"forged"))
    assert len(tracker) == 0


def test_forget_returns_the_unfinished_path_once() -> None:
    tracker = UploadTracker()
    assert tracker.start(KEY, start())
    assert tracker.forget(KEY) == "/tmp/upload.a"
    assert tracker.forget(KEY) is None
    assert not tracker.claim(KEY, done())


def test_forget_all_returns_every_unfinished_path_and_empties_the_tracker() -> None:
    tracker = UploadTracker()
    assert tracker.start((0, 1), start("/tmp/upload.a", conn_id=1))
    assert tracker.start((0, 2), start("/tmp/upload.b", conn_id=2))
    assert sorted(tracker.forget_all()) == ["/tmp/upload.a", "/tmp/upload.b"]
    assert len(tracker) == 0
    assert tracker.forget_all() == []
