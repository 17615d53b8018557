"""Upload faults through the real Mongrel2's async upload path: the temp file vanishes before
``upload-done``, or is swapped for a symlink to a file outside the chroot. Both are refused
with a clear status, never served, and the worker keeps serving uploads."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from tests.helpers.http import status_of
from tests.helpers.uploads import post, upload_stack, wait_upload_file

log = logging.getLogger(__name__)
SIZE = 3_000_000


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    with upload_stack(tmp_path_factory.mktemp("upload-faults")) as running:
        yield running


def upload_with(server, temp_dir: Path, tamper) -> bytes:
    """POST ``SIZE`` bytes; once Mongrel2 has created its temp file, ``tamper(path)``."""
    head = f"POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + b"z" * (SIZE // 2))
        names = wait_upload_file(temp_dir)
        tamper(temp_dir / names[0])
        sock.sendall(b"z" * (SIZE - SIZE // 2))
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
            if b"\r\n\r\n" in reply and len(reply) > 200:
                break
        return reply


def test_upload_temp_file_vanishing_is_answered_500_and_the_worker_keeps_serving(uploads):
    server = uploads.server
    reply = upload_with(server, uploads.temp_dir, os.unlink)
    log.warning("vanished upload: %r", reply[:60])
    assert status_of(reply) == 500
    assert post(server, "/upload/", b"still serving")[0] == 200


def test_upload_temp_file_swapped_for_a_symlink_outside_the_chroot_is_refused(uploads):
    server = uploads.server

    def swap(path: Path) -> None:
        path.unlink()
        path.symlink_to("/etc/passwd")

    reply = upload_with(server, uploads.temp_dir, swap)
    log.warning("symlinked upload: %r", reply[:60])
    assert status_of(reply) == 400
    assert b"root:" not in reply
    assert Path("/etc/passwd").stat().st_size > 0  # the link's target was not touched
    assert post(server, "/upload/", b"still serving")[0] == 200
