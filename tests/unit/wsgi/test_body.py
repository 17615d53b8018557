"""Unit tests of m2bridge.wsgi.body: inline bodies and the checks on async-upload temp files.

The layout mirrors a real Mongrel2 chroot: ``srv/`` is the chroot, ``upload.temp_store`` is
``/tmp/upload.XXXXXX``, so Mongrel2 announces ``/tmp/upload.AbC123`` for ``srv/tmp/upload.AbC123``.
"""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path

import pytest

from m2bridge.errors import ProtocolError
from m2bridge.wire.protocol import Request
from m2bridge.wsgi.body import declared_body, inline_body, open_upload, remove_upload, upload_path

TEMP_STORE = "/tmp/upload.XXXXXX"
DATA = bytes(range(256)) * 40


@pytest.fixture
def chroot(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp" / "upload.AbC123").write_bytes(DATA)
    (root / "other").mkdir()
    (root / "other" / "upload.Zz9999").write_bytes(b"not an upload")
    (tmp_path / "secret").write_bytes(b"outside the chroot")
    return root


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def refused(announced: str, chroot: Path, temp_store: str | None = TEMP_STORE) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        open_upload(announced, str(chroot), temp_store)
    return caught.value


# ------------------------------------------------------------------ inline bodies


def test_inline_body_is_a_binary_stream_of_the_message_body() -> None:
    stream = inline_body(Request(b"s", 1, "/", {"METHOD": "POST"}, b"a\x00b\r\nc"))
    assert stream.read(2) == b"a\x00"
    assert stream.readline() == b"b\r\n"
    assert stream.read() == b"c"


# ------------------------------------------------------------------ accepted uploads


def test_announced_path_is_read_inside_the_chroot(chroot: Path) -> None:
    stream, size = open_upload("/tmp/upload.AbC123", str(chroot), TEMP_STORE)
    with stream:
        assert size == len(DATA)
        assert stream.read() == DATA
        assert not stream.writable()


def test_without_temp_store_any_regular_file_in_the_chroot_is_accepted(chroot: Path) -> None:
    stream, size = open_upload("/other/upload.Zz9999", str(chroot), None)
    with stream:
        assert (stream.read(), size) == (b"not an upload", 13)


def test_relative_chroot_resolves_against_the_cwd(
    chroot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(chroot)
    stream, size = open_upload("/tmp/upload.AbC123", "./", TEMP_STORE)
    with stream:
        assert (size, stream.read()) == (len(DATA), DATA)


def test_chroot_given_through_a_symlink_is_resolved(chroot: Path, tmp_path: Path) -> None:
    link = tmp_path / "srv-link"
    link.symlink_to(chroot)
    real = str(chroot.resolve() / "tmp" / "upload.AbC123")
    assert upload_path("/tmp/upload.AbC123", str(link), TEMP_STORE) == real  # not via the link
    stream, size = open_upload("/tmp/upload.AbC123", str(link), TEMP_STORE)
    with stream:
        assert (size, stream.read()) == (len(DATA), DATA)


def test_announced_path_without_leading_slash_is_still_inside(chroot: Path) -> None:
    assert upload_path("tmp/upload.AbC123", str(chroot), TEMP_STORE) == str(
        chroot / "tmp" / "upload.AbC123"
    )


def test_empty_upload_has_size_zero(chroot: Path) -> None:
    (chroot / "tmp" / "upload.empty0").write_bytes(b"")
    stream, size = open_upload("/tmp/upload.empty0", str(chroot), TEMP_STORE)
    with stream:
        assert (size, stream.read()) == (0, b"")


# ------------------------------------------------------------------ refused uploads (400)


@pytest.mark.parametrize(
    "announced",
    ["/../secret", "/tmp/../../secret", "../secret", "/tmp/../..", "/", "/.", "//"],
)
def test_paths_escaping_the_chroot_are_refused(announced: str, chroot: Path) -> None:
    error = refused(announced, chroot, None)
    assert error.error_status_hint == 400
    assert "is not inside the chroot" in str(error)


def test_forged_etc_passwd_is_refused(chroot: Path) -> None:
    error = refused("/etc/passwd", chroot)
    assert error.error_status_hint == 400
    assert "not in the temp store" in str(error)


@pytest.mark.parametrize("announced", ["/other/upload.Zz9999", "/tmp/sub/upload.x", "/upload.x"])
def test_files_outside_the_temp_store_directory_are_refused(announced: str, chroot: Path) -> None:
    (chroot / "tmp" / "sub").mkdir()
    (chroot / "tmp" / "sub" / "upload.x").write_bytes(b"x")
    (chroot / "upload.x").write_bytes(b"x")
    error = refused(announced, chroot)
    assert error.error_status_hint == 400
    assert "not in the temp store" in str(error)


def test_files_without_the_template_prefix_are_refused(chroot: Path) -> None:
    (chroot / "tmp" / "evil.AbC123").write_bytes(b"x")
    error = refused("/tmp/evil.AbC123", chroot)
    assert error.error_status_hint == 400
    assert "does not start with 'upload.'" in str(error)


def test_template_without_x_suffix_uses_the_whole_name_as_prefix(chroot: Path) -> None:
    stream, size = open_upload("/tmp/upload.AbC123", str(chroot), "/tmp/upload.")
    with stream:
        assert (size, stream.read()) == (len(DATA), DATA)
    assert "does not start with 'up.x'" in str(refused("/tmp/upload.AbC123", chroot, "/tmp/up.x"))


def test_symlink_to_a_file_outside_is_refused(chroot: Path, tmp_path: Path) -> None:
    (chroot / "tmp" / "upload.link01").symlink_to(tmp_path / "secret")
    error = refused("/tmp/upload.link01", chroot)
    assert (error.error_status_hint, "symlink" in str(error)) == (400, True)


def test_symlink_to_a_file_inside_is_refused_too(chroot: Path) -> None:
    (chroot / "tmp" / "upload.link02").symlink_to(chroot / "tmp" / "upload.AbC123")
    assert "symlink" in str(refused("/tmp/upload.link02", chroot))


def test_symlinked_directory_component_is_refused(chroot: Path) -> None:
    (chroot / "tmplink").symlink_to(chroot / "tmp")
    assert "symlink" in str(refused("/tmplink/upload.AbC123", chroot, None))


def test_temp_store_swapped_for_a_symlink_after_first_use_is_refused(
    chroot: Path, tmp_path: Path
) -> None:
    # The chroot and temp store are resolved once per process; each file is still checked.
    assert upload_path("/tmp/upload.AbC123", str(chroot), TEMP_STORE)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "upload.AbC123").write_bytes(b"not Mongrel2's")
    (chroot / "tmp").rename(tmp_path / "old-tmp")
    (chroot / "tmp").symlink_to(outside)
    assert "symlink" in str(refused("/tmp/upload.AbC123", chroot))


def test_chroot_that_appears_later_through_a_symlink_is_resolved_then(tmp_path: Path) -> None:
    link = tmp_path / "late-srv"
    missing = refused("/tmp/upload.AbC123", link)  # not there yet: nothing to open
    assert (missing.error_status_hint, "upload temp file vanished" in str(missing)) == (500, True)
    real = tmp_path / "real-srv"
    (real / "tmp").mkdir(parents=True)
    (real / "tmp" / "upload.AbC123").write_bytes(DATA)
    link.symlink_to(real)
    stream, size = open_upload("/tmp/upload.AbC123", str(link), TEMP_STORE)
    with stream:
        assert (size, stream.read()) == (len(DATA), DATA)


def test_directory_is_refused(chroot: Path) -> None:
    (chroot / "tmp" / "upload.dir000").mkdir()
    error = refused("/tmp/upload.dir000", chroot)
    assert (error.error_status_hint, "not a regular file" in str(error)) == (400, True)


def test_fifo_is_refused_without_blocking(chroot: Path) -> None:
    os.mkfifo(chroot / "tmp" / "upload.fifo00")
    before = open_fds()
    error = refused("/tmp/upload.fifo00", chroot)
    assert "not a regular file" in str(error)
    assert open_fds() == before


@pytest.mark.parametrize("announced", ["", "/tmp/upload.\x00x"])
def test_empty_or_nul_paths_are_refused(announced: str, chroot: Path) -> None:
    error = refused(announced, chroot)
    assert (error.error_status_hint, "invalid upload path" in str(error)) == (400, True)


def test_nul_in_chroot_is_refused() -> None:
    with pytest.raises(ProtocolError, match="invalid upload path"):
        upload_path("/tmp/upload.x", "/srv\x00", None)


# ------------------------------------------------------------------ server-side failures (500)


def test_vanished_file_is_a_500(chroot: Path) -> None:
    error = refused("/tmp/upload.gone00", chroot)
    assert error.error_status_hint == 500
    assert "upload temp file vanished" in str(error)


def test_unreadable_file_is_a_500(chroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: str, flags: int) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("m2bridge.wsgi.body.os.open", denied)
    error = refused("/tmp/upload.AbC123", chroot)
    assert error.error_status_hint == 500
    assert "cannot open upload" in str(error)
    assert "Permission denied" in str(error)


def test_symlink_swapped_in_after_the_check_is_refused(
    chroot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def swapped(path: str, flags: int) -> int:
        assert flags & os.O_NOFOLLOW
        raise OSError(errno.ELOOP, "Too many levels of symbolic links")

    monkeypatch.setattr("m2bridge.wsgi.body.os.open", swapped)
    error = refused("/tmp/upload.AbC123", chroot)
    assert (error.error_status_hint, "is a symlink" in str(error)) == (400, True)


def test_failure_after_open_closes_the_descriptor(
    chroot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> os.stat_result:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("m2bridge.wsgi.body.os.fstat", broken)
    before = open_fds()
    with pytest.raises(OSError, match="I/O error"):
        open_upload("/tmp/upload.AbC123", str(chroot), TEMP_STORE)
    assert open_fds() == before


def test_accepted_upload_leaves_exactly_one_descriptor_open(chroot: Path) -> None:
    before = open_fds()
    stream, _ = open_upload("/tmp/upload.AbC123", str(chroot), TEMP_STORE)
    assert open_fds() == before + 1
    stream.close()
    assert open_fds() == before


# ------------------------------------------------------------------ remove_upload


def test_remove_upload_deletes_the_file(chroot: Path) -> None:
    remove_upload("/tmp/upload.AbC123", str(chroot))
    assert not (chroot / "tmp" / "upload.AbC123").exists()


def test_remove_upload_with_temp_store_deletes_the_file(chroot: Path) -> None:
    remove_upload("/tmp/upload.AbC123", str(chroot), TEMP_STORE)
    assert not (chroot / "tmp" / "upload.AbC123").exists()


def test_remove_upload_of_a_missing_file_is_quiet(
    chroot: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="m2bridge.wsgi.body"):
        remove_upload("/tmp/upload.gone00", str(chroot))
    assert "already gone" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("announced", "temp_store"),
    [("/../secret", None), ("/other/upload.Zz9999", TEMP_STORE), ("", None)],
)
def test_remove_upload_never_deletes_a_refused_path(
    announced: str,
    temp_store: str | None,
    chroot: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    remove_upload(announced, str(chroot), temp_store)
    assert (tmp_path / "secret").exists()
    assert (chroot / "other" / "upload.Zz9999").exists()
    assert "not removing upload" in caplog.text


def test_remove_upload_logs_an_os_error_and_does_not_raise(
    chroot: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (chroot / "tmp" / "upload.dir000").mkdir()
    remove_upload("/tmp/upload.dir000", str(chroot), TEMP_STORE)
    assert (chroot / "tmp" / "upload.dir000").is_dir()
    assert "cannot remove upload temp file" in caplog.text


def test_resolved_directories_are_forgotten_once_the_cache_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("m2bridge.wsgi.body._REAL_DIRS", {})
    monkeypatch.setattr("m2bridge.wsgi.body._REAL_DIRS_MAX", 2)
    first, second = tmp_path / "first", tmp_path / "second"
    for root, data in ((first, b"first"), (second, b"second")):
        (root / "tmp").mkdir(parents=True)
        (root / "tmp" / "upload.AbC123").write_bytes(data)
    link = tmp_path / "srv"
    link.symlink_to(first)
    assert upload_path("/tmp/upload.AbC123", str(link), None) == str(first / "tmp/upload.AbC123")
    link.unlink()
    link.symlink_to(second)  # the kept resolution still names the first directory
    assert upload_path("/tmp/upload.AbC123", str(link), None) == str(first / "tmp/upload.AbC123")
    for name in ("a", "b"):  # two more directories fill the cache of two, then clear it
        (tmp_path / name).mkdir()
        refused("/missing", tmp_path / name, None)
    assert upload_path("/tmp/upload.AbC123", str(link), None) == str(second / "tmp/upload.AbC123")


# ------------------------------------------------------------ declared body length


def test_declared_body_of_the_exact_size_is_the_file_itself():
    stream = io.BytesIO(b"abc")
    assert declared_body(stream, 3, "3") == (stream, 3)


def test_declared_body_of_a_chunked_upload_is_the_whole_file():
    stream = io.BytesIO(b"abcdef")
    assert declared_body(stream, 6, None) == (stream, 6)


def test_declared_body_stops_at_the_content_length_when_the_file_holds_more():
    stream = io.BytesIO(b"a=1\nb=2\nGET /next HTTP/1.1\r\n\r\n")
    body, length = declared_body(stream, len(stream.getvalue()), "8")
    assert length == 8
    assert body.readline() == b"a=1\n"
    assert list(body) == [b"b=2\n"]
    assert body.read() == b""
    assert body.read(10) == b""


def test_declared_body_reads_in_pieces_never_past_the_declared_length():
    data = bytes(range(256)) * 100
    body, length = declared_body(io.BytesIO(data + b"pipelined"), len(data) + 9, str(len(data)))
    pieces = []
    while piece := body.read(1000):
        pieces.append(piece)
    assert (length, b"".join(pieces)) == (len(data), data)


def test_closing_a_limited_body_closes_the_file():
    stream = io.BytesIO(b"abcdef")
    body, _ = declared_body(stream, 6, "2")
    body.close()
    assert stream.closed


def test_declared_body_shorter_file_than_content_length_is_a_400():
    with pytest.raises(
        ProtocolError, match="upload of 3 bytes is shorter than its Content-Length 4"
    ) as caught:
        declared_body(io.BytesIO(b"abc"), 3, "4")
    assert caught.value.error_status_hint == 400


@pytest.mark.parametrize("value", ["", "-1", "1e3", "١٢", "0x10"])
def test_declared_body_with_a_content_length_that_is_no_length_is_a_400(value):
    with pytest.raises(ProtocolError, match="invalid Content-Length") as caught:
        declared_body(io.BytesIO(b"abc"), 3, value)
    assert caught.value.error_status_hint == 400
