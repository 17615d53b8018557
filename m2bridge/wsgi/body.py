"""Request bodies for ``wsgi.input``: the inline body, or Mongrel2's async-upload temp file.

Bodies over ``limits.content_length`` (and every chunked body) reach the handler as a file that
Mongrel2 wrote under ``upload.temp_store``. The path Mongrel2 announces is relative to *its*
chroot, and a client can forge the ``x-mongrel2-upload-*`` headers that carry it, so the path is
only trusted when it resolves inside the chroot, inside the temp store's directory, with the
temp store's name prefix, through no symlink (Mongrel2 resolves links inside its chroot and we
outside it, so a link cannot be followed the same way), to a regular file. Mongrel2 never
deletes these files: ``remove_upload`` does, after the request.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from typing import TYPE_CHECKING, BinaryIO, cast

from m2bridge.errors import ProtocolError

if TYPE_CHECKING:
    from m2bridge.wire.protocol import Request

log = logging.getLogger("m2bridge.wsgi.body")

#: mkstemp templates end with this; the file name starts with what precedes it.
TEMPLATE_SUFFIX = "XXXXXX"


def inline_body(request: Request) -> BinaryIO:
    """Return the body Mongrel2 sent inside the message as a readable binary stream."""
    return io.BytesIO(request.body)


def open_upload(announced_path: str, chroot: str, temp_store: str | None) -> tuple[BinaryIO, int]:
    """Open the temp file of an async upload for reading.

    Args:
        announced_path: the ``x-mongrel2-upload-done`` value (a path inside Mongrel2's chroot).
        chroot: Mongrel2's chroot directory as this process sees it.
        temp_store: Mongrel2's ``upload.temp_store`` template (``/tmp/upload.XXXXXX``), or None
            to accept any file inside the chroot.

    Returns:
        The open file (binary, read-only, positioned at 0) and its size in bytes.

    Raises:
        ProtocolError: the path is refused (``error_status_hint`` 400) or the file is gone or
            unreadable (500). The message says which.
    """
    real = upload_path(announced_path, chroot, temp_store)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ProtocolError(f"upload temp file vanished: {real!r}", error_status_hint=500) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProtocolError(f"upload path {real!r} is a symlink", 400) from None
        raise ProtocolError(f"cannot open upload {real!r}: {exc.strerror}", 500) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ProtocolError(f"upload path {real!r} is not a regular file", 400)
        os.set_blocking(fd, True)
        stream = open(fd, "rb")  # noqa: SIM115 -- the caller owns and closes it
    except BaseException:
        os.close(fd)
        raise
    return stream, info.st_size


class LimitedInput(io.RawIOBase):
    """The first ``limit`` bytes of a binary stream, for ``wsgi.input``: reads stop there.

    An async upload's temp file can hold more than the request's body: Mongrel2 1.12.2 writes
    every byte it read after the headers into it, so requests the client pipelined behind an
    oversized body land in the file too (docs/protocol.md). The app gets the declared body.
    """

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(min(len(buffer), self._left))
        count = len(data)
        buffer[:count] = data
        self._left -= count
        return count

    def close(self) -> None:
        self._stream.close()
        super().close()


def declared_body(stream: BinaryIO, size: int, content_length: str | None) -> tuple[BinaryIO, int]:
    """An async upload's body as the request declared it: (stream, length).

    Args:
        stream: the temp file, open at 0.
        size: its size in bytes.
        content_length: the request's ``content-length`` header; None for a chunked body, which
            Mongrel2 wrote de-chunked and whose file size is its length.

    Returns:
        The stream (limited to the declared length when the file holds more) and the length.

    Raises:
        ProtocolError: (400) the header is not a length, or the file is shorter than it.
    """
    if content_length is None:
        return stream, size
    if not (content_length.isascii() and content_length.isdigit()):
        raise ProtocolError(f"upload with an invalid Content-Length {content_length!r:.40}", 400)
    declared = int(content_length)
    if size < declared:
        raise ProtocolError(
            f"upload of {size} bytes is shorter than its Content-Length {declared}", 400
        )
    if size == declared:
        return stream, size
    return cast("BinaryIO", io.BufferedReader(LimitedInput(stream, declared))), declared


def remove_upload(announced_path: str, chroot: str, temp_store: str | None = None) -> None:
    """Delete an async upload's temp file after its request; never raises (it logs).

    The same checks as ``open_upload`` apply, so a forged path can never delete another file.
    """
    try:
        real = upload_path(announced_path, chroot, temp_store)
    except ProtocolError as exc:
        log.warning("not removing upload %r: %s", announced_path, exc)
        return
    try:
        os.unlink(real)
    except FileNotFoundError:
        log.debug("upload temp file %r was already gone", real)
    except OSError as exc:
        log.warning("cannot remove upload temp file %r: %s", real, exc.strerror)


def upload_path(announced_path: str, chroot: str, temp_store: str | None) -> str:
    """Return the real path of an announced upload file, or raise ``ProtocolError`` (400)."""
    if not announced_path or "\0" in announced_path or "\0" in chroot:
        raise ProtocolError(f"invalid upload path {announced_path!r:.80}", 400)
    root = _real_dir(chroot)
    joined = os.path.normpath(os.path.join(root, announced_path.lstrip("/")))
    if not _strictly_inside(joined, root):
        raise ProtocolError(
            f"upload path {announced_path!r:.80} is not inside the chroot {root}", 400
        )
    if os.path.realpath(joined) != joined:
        raise ProtocolError(f"upload path {announced_path!r:.80} goes through a symlink", 400)
    if temp_store is not None:
        _check_temp_store(joined, root, temp_store)
    return joined


def _check_temp_store(real: str, root: str, temp_store: str) -> None:
    store_dir, template = os.path.split(temp_store)
    real_store_dir = _real_dir(os.path.join(root, store_dir.lstrip("/")))
    if os.path.dirname(real) != real_store_dir:
        raise ProtocolError(f"upload path {real!r} is not in the temp store {real_store_dir}", 400)
    prefix = template.removesuffix(TEMPLATE_SUFFIX)
    if not os.path.basename(real).startswith(prefix):
        raise ProtocolError(f"upload file name of {real!r} does not start with {prefix!r}", 400)


def _real_dir(path: str) -> str:
    """``os.path.realpath`` of the chroot or temp-store directory, resolved once per process.

    An existing directory's resolution is kept (bounded): the per-file check that the joined
    path is its own realpath still refuses a symlink put into the chroot later.
    """
    real = _REAL_DIRS.get(path)
    if real is None:
        real = os.path.realpath(path)
        if os.path.isdir(real):  # a directory still to be created is resolved again next time
            if len(_REAL_DIRS) >= _REAL_DIRS_MAX:
                _REAL_DIRS.clear()
            _REAL_DIRS[path] = real
    return real


_REAL_DIRS: dict[str, str] = {}
_REAL_DIRS_MAX = 64


def _strictly_inside(path: str, root: str) -> bool:
    return path != root and os.path.commonpath([path, root]) == root
