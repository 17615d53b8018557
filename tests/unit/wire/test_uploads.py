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


def test_a_done_completes_the_announced_upload_once() -> None:
    tracker = UploadTracker()
    assert tracker.start(KEY, start())
    assert tracker.claim(KEY, done())
    assert len(tracker) == 0
    assert not tracker.claim(KEY, done())  # the same done again: no start left to match


def test_a_done_of_another_path_or_connection_is_not_the_announced_upload() -> None:
    tracker = UploadTracker()
    assert tracker.start(KEY, start())
    assert not tracker.claim(KEY, done("/tmp/upload.b"))
    assert not tracker.claim((1, 24), done())
    assert tracker.claim(KEY, done())  # the announced upload still waited for its own done


def test_a_start_after_its_done_is_taken_as_the_next_upload() -> None:
    tracker = UploadTracker()
    assert tracker.start(KEY, start())
    assert tracker.claim(KEY, done())
    assert tracker.start(KEY, start())


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
