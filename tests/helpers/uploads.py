"""Mongrel2's async upload path (upload.temp_store) with a real worker, for upload tests.

Mongrel2 writes large request bodies to ``<chroot>/tmp/upload.XXXXXX`` and announces them
twice; the worker serves the ``done`` message with the file as ``wsgi.input``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.mongrel2 import HandlerSpec, Mongrel2Server, run_mongrel2
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, WorkerProcess, run_worker

TEMP_STORE = "/tmp/upload.XXXXXX"


@dataclass
class UploadStack:
    """Mongrel2 with upload.temp_store, and one worker serving ``mux`` (``/upload/``)."""

    server: Mongrel2Server
    worker: WorkerProcess
    chroot: Path

    @property
    def temp_dir(self) -> Path:
        """Where Mongrel2 writes its upload temp files."""
        return self.chroot / "tmp"


@contextlib.contextmanager
def upload_stack(root: Path) -> Iterator[UploadStack]:
    """Run the stack in ``root``; afterwards the worker must have exited with status 0."""
    chroot = root / "m2"
    handler = HandlerSpec(route="/", protocol="json")
    extra = ["--m2-chroot", str(chroot), "--upload-temp-store", TEMP_STORE, "--cancel-grace", "0"]
    with (
        run_mongrel2(chroot, [handler], {"upload.temp_store": TEMP_STORE}) as server,
        run_worker(root / "w", f"{APPS}.mux:app", [handler.send_spec], [handler.recv_spec],
                   extra) as worker,
    ):  # fmt: skip
        yield UploadStack(server, worker, chroot)
    assert worker.proc.returncode == 0, worker.log()


def leftovers(temp_dir: Path) -> list[str]:
    """The upload temp files in ``temp_dir``, sorted."""
    return sorted(name for name in os.listdir(temp_dir) if name.startswith("upload."))


def wait_no_leftovers(temp_dir: Path, timeout: float = 3.0) -> list[str]:
    """Wait until no upload temp file is left; return those still there at the timeout."""
    wait_until(lambda: not leftovers(temp_dir), timeout)
    return leftovers(temp_dir)


def wait_upload_file(temp_dir: Path, timeout: float = 5.0) -> list[str]:
    """Wait until Mongrel2 has created an upload temp file; fail if it did not."""
    assert wait_until(lambda: leftovers(temp_dir), timeout, interval=0.01), (
        "Mongrel2 did not start an upload file"
    )
    return leftovers(temp_dir)


def post(
    server: Mongrel2Server,
    path: str,
    body: object,
    headers: dict[str, str] | None = None,
    encode_chunked: bool = False,
) -> tuple[int, bytes]:
    """One POST on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers or {},  # type: ignore[arg-type]
                     encode_chunked=encode_chunked)  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
